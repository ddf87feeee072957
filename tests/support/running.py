"""Running a long-lived component (`run()` + `ready`) for the length of a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def running(run: Coroutine[Any, Any, Any], ready: asyncio.Event, *, name: str,
                  timeout_seconds: float = 30) -> AsyncIterator[None]:
    """Start `run` as a task, wait for `ready` (or the task's failure, raised), cancel and await it at the end."""
    task = asyncio.create_task(run, name=name)
    try:
        waiting = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiting}, timeout=timeout_seconds, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            if task.done():
                task.result()
            raise TimeoutError(f"{name} did not become ready within {timeout_seconds} s")
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def stopped(task: asyncio.Task[Any]) -> None:
    """Cancel a task a test started and wait until it has ended (its own error, if any, is not raised)."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
