"""Owners for background tasks: every long-lived task is started, named, watched and stopped by one owner.

`TaskSupervisor.spawn` starts a named task; if one ends unexpectedly (returns or raises) the supervisor records it
and sets `failed`, so its owner can shut down instead of running half-alive. `stop` cancels in reverse start order
and awaits each with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSupervisor:
    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False
        self.failed = asyncio.Event()
        self.failure: BaseException | None = None

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self._owner}: {name}")
        task.add_done_callback(self._on_done)
        self._tasks.append(task)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        if self._stopping or task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s failed", task.get_name(), exc_info=error)
        else:
            log.error("%s ended unexpectedly", task.get_name())
            error = RuntimeError(f"{task.get_name()} ended unexpectedly")
        if self.failure is None:
            self.failure = error
        self.failed.set()

    async def stop(self, timeout_seconds: float = 10.0) -> None:
        """Cancel every task, newest first, and wait for each to finish unwinding."""
        self._stopping = True
        for task in reversed(self._tasks):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=timeout_seconds)
            if not done:
                log.warning("%s did not stop within %.0f s", task.get_name(), timeout_seconds)
            elif not task.cancelled() and task.exception() is not None:
                log.debug("%s raised while stopping", task.get_name(), exc_info=task.exception())
        self._tasks.clear()


async def first_of(*awaitables: Awaitable[Any]) -> None:
    """Wait until one of `awaitables` finishes; the others are cancelled and awaited before returning."""
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
        await asyncio.gather(*futures, return_exceptions=True)


async def wait_ready(event: asyncio.Event, tasks: TaskSupervisor, what: str) -> None:
    """Wait for `event`, unless a supervised task fails first (then raise, naming what was awaited)."""
    await first_of(event.wait(), tasks.failed.wait())
    if tasks.failed.is_set():
        raise RuntimeError(f"a component stopped while waiting for {what}") from tasks.failure
