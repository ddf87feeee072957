"""Bounded polling for tests: wait until a condition holds, never a fixed sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_seconds: float = 10.0, interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call `probe` until it returns a truthy value (returned) or `timeout_seconds` pass (AssertionError)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_seconds} s waiting for {what}")
        await asyncio.sleep(interval)
