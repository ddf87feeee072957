"""Suite-wide rules: no test may leave a task running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def no_leftover_tasks() -> AsyncIterator[None]:
    """Fail any test that leaves a background task running: every task must have an owner that awaits it."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    # Give tasks that were cancelled in teardown one loop turn to finish unwinding.
    for _ in range(3):
        left = {t for t in asyncio.all_tasks() - before if t is not current and not t.done()}
        if not left:
            return
        await asyncio.sleep(0)
    names = sorted(t.get_name() for t in left)
    for task in left:
        task.cancel()
    pytest.fail(f"test left tasks running: {names}")
