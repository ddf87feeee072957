"""Keeping the cycle collector off long-lived data, for processes that hold large in-memory stores.

The sandbox keeps every object as plain JSON-shaped dicts and lists: acyclic, long-lived, and many. CPython's
full collections re-scan all of them, which showed up as 100 ms+ pauses in watch latency (see `make bench`).
Freezing (gc.freeze) moves what is alive now out of the collector's sight; a periodic full collection with the
objects unfrozen reclaims any cyclic garbage that was frozen while still in use.
"""

from __future__ import annotations

import gc
import time

from vnode.clock import Clock


async def freeze_long_lived_objects(clock: Clock, *, freeze_every_seconds: float = 0.5,
                                    full_collect_every_seconds: float = 300.0) -> None:
    """Run until cancelled; unfreezes on the way out so the process ends with a normal collector."""
    last_full = time.monotonic()
    try:
        while True:
            await clock.sleep(freeze_every_seconds)
            if time.monotonic() - last_full >= full_collect_every_seconds:
                gc.unfreeze()
                gc.collect()
                last_full = time.monotonic()
            gc.freeze()
    finally:
        gc.unfreeze()
