"""KeyedQueue: de-duplicating work queue with per-key exponential backoff, drained by N workers.

Like client-go's workqueue: a key waiting is queued once however often it is added; a key is never processed by two
workers at once (re-added while processing, it runs again afterwards); a handler that raises `Retryable` has its key
retried after a delay that doubles per consecutive failure (Throttled's hint is honoured); any other exception is
logged and the key dropped until it is added again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Awaitable, Callable

from vnode.clock import Clock
from vnode.errors import Retryable, Throttled
from vnode.util.tasks import TaskSupervisor, first_of

log = logging.getLogger(__name__)
Handler = Callable[[str], Awaitable[None]]


class KeyedQueue:
    def __init__(self, name: str, handler: Handler, *, workers: int, clock: Clock, base_delay_seconds: float,
                 max_delay_seconds: float) -> None:
        self.name = name
        self._handler = handler
        self._workers = workers
        self._clock = clock
        self._base = base_delay_seconds
        self._max = max_delay_seconds
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._processing: set[str] = set()
        self._again: set[str] = set()  # added while processing
        self._failures: dict[str, int] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._sequence = itertools.count()
        self._delayed_changed = asyncio.Event()

    @property
    def depth(self) -> int:
        return len(self._queued) + len(self._delayed)

    def add(self, key: str) -> None:
        if key in self._processing:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: str, delay_seconds: float) -> None:
        if delay_seconds <= 0:
            self.add(key)
            return
        heapq.heappush(self._delayed, (self._clock.monotonic() + delay_seconds, next(self._sequence), key))
        self._delayed_changed.set()

    def failures(self, key: str) -> int:
        return self._failures.get(key, 0)

    def _backoff(self, key: str, error: Retryable) -> float:
        count = self._failures[key] = self._failures.get(key, 0) + 1
        delay: float = min(self._base * 2.0 ** (count - 1), self._max)
        if isinstance(error, Throttled) and error.retry_after_seconds:
            delay = max(delay, error.retry_after_seconds)
        return delay * random.uniform(0.8, 1.0)  # jitter spreads a burst of failing pods

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                await self._handler(key)
                self._failures.pop(key, None)
            except Retryable as exc:
                delay = self._backoff(key, exc)
                log.info("%s: %s failed (%s); retry %d in %.1f s", self.name, key, exc, self._failures[key], delay)
                self.add_after(key, delay)
            except Exception:
                log.exception("%s: %s failed permanently", self.name, key)
                self._failures.pop(key, None)
            finally:
                self._processing.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)

    async def _release_delayed(self) -> None:
        while True:
            self._delayed_changed.clear()
            now = self._clock.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                self.add(heapq.heappop(self._delayed)[2])
            if self._delayed:
                await first_of(self._delayed_changed.wait(), self._clock.sleep(self._delayed[0][0] - now))
            else:
                await self._delayed_changed.wait()

    async def run(self) -> None:
        """Run the workers until cancelled."""
        tasks = TaskSupervisor(f"queue {self.name}")
        try:
            tasks.spawn(self._release_delayed(), name="delayed keys")
            for index in range(self._workers):
                tasks.spawn(self._work(), name=f"worker {index}")
            await tasks.failed.wait()
            raise RuntimeError(f"queue {self.name} lost a worker") from tasks.failure
        finally:
            await tasks.stop()
