"""An ECI emulator served for the length of a block, for tests and benchmarks that talk to it over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from vnode.clock import Clock
from vnode.config import EciEmulatorSettings
from vnode.sandbox.eci.server import EciEmulator


@asynccontextmanager
async def serving(settings: EciEmulatorSettings, clock: Clock) -> AsyncIterator[EciEmulator]:
    """The emulator, once it answers; stopped (its runtime with it) when the block ends."""
    server = EciEmulator(settings, clock)
    task = asyncio.create_task(server.run(), name="eci emulator")
    ready = asyncio.ensure_future(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    await asyncio.gather(ready, return_exceptions=True)
    try:
        if task.done():
            task.result()  # it failed to start: raise why
        assert server.ready.is_set()
        yield server
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
