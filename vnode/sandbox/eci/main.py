"""`vnode eci-emulator`: the ECI emulator in the foreground until SIGINT or SIGTERM.

Prints one ready line once the server answers (`vnode eci-emulator ready: endpoint=... region=...`) and stops
everything it started on a signal. `--runtime sim` runs nothing; `--runtime docker` runs each group's containers on
the Docker engine (and removes them all when it stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from vnode.clock import SystemClock
from vnode.config import EciEmulatorSettings
from vnode.sandbox.eci.server import EciEmulator

SHUTDOWN_TIMEOUT_SECONDS = 15.0  # the docker runtime drains in-flight steps, then removes its containers


async def run_eci_emulator(settings: EciEmulatorSettings) -> int:
    emulator = EciEmulator(settings, SystemClock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(emulator.run(), name="eci emulator")
    ready = asyncio.create_task(emulator.ready.wait(), name="eci emulator ready wait")
    stopping = asyncio.create_task(stop.wait(), name="eci emulator signal wait")
    try:
        await asyncio.wait({serving, ready, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and not serving.done():
            print(f"vnode eci-emulator ready: endpoint={emulator.endpoint} region={settings.region_id}", flush=True)
            await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # startup or serving failed: raise its error
            return 1
        return 0
    finally:
        for task in (stopping, ready, serving):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(stopping, ready, serving, return_exceptions=True),
                                   SHUTDOWN_TIMEOUT_SECONDS)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("vnode eci-emulator stopped", file=sys.stderr, flush=True)
