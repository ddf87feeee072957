"""`EventRecorder`: best-effort core/v1 Events about pods and the node, written in the background.

Owns the bounded queue behind the non-blocking `record`, the Event body (the fields kubelet fills), client-go's
EventCorrelator rule that an identical event within ten minutes bumps `count` on the existing Event instead of
creating another, and a few retries per write. It must never block or fail its caller: when the queue is full or
the API keeps refusing, events are dropped with a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from vnode.clock import Clock, rfc3339
from vnode.errors import Conflict, NotFound, Retryable, Throttled, VnodeError
from vnode.kube.client import KubeClient
from vnode.kube.paths import event_path, events_path
from vnode.kube.ratelimit import Backoff
from vnode.util.tasks import TaskSupervisor

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
# Events about cluster-scoped objects (Nodes) live in `default`, as kubelet's do.
CLUSTER_SCOPED_EVENT_NAMESPACE = "default"
# events.k8s.io caps `note` at 1 KiB; core/v1 Events are served from the same storage, so stay under it.
MAX_MESSAGE_CHARS = 1024
OVERFLOW_LOG_INTERVAL_SECONDS = 30.0
_META_FIELDS = ("name", "namespace", "uid", "resourceVersion")


@dataclass(frozen=True)
class _Pending:
    involved: dict[str, str]
    namespace: str
    type: EventType
    reason: str
    message: str
    at: datetime
    seen: float  # clock.monotonic() when recorded


@dataclass
class _Written:
    name: str
    count: int
    seen: float


class EventRecorder:
    """`record` queues (never blocks); `run` writes Events concurrently (one writer per object/reason/message at a
    time), aggregating repeats within the window."""

    def __init__(self, client: KubeClient, *, component: str, host: str, clock: Clock, queue_size: int = 1000,
                 aggregate_window_seconds: float = 600.0, max_attempts: int = 4, retry_initial_seconds: float = 0.5,
                 cache_size: int = 4096, writers: int = 4) -> None:
        self._client = client
        self._writers = writers
        self._busy: set[tuple[str, ...]] = set()  # keys being written: one writer per key keeps counts right
        self._component = component
        self._host = host
        self._clock = clock
        self._pending: deque[_Pending] = deque()
        self._queue_size = queue_size
        self._wakeup = asyncio.Event()
        self._window = aggregate_window_seconds
        self._max_attempts = max_attempts
        self._retry_initial = retry_initial_seconds
        # client-go's correlator keeps an LRU of 4096 recent events; older ones simply start a new Event.
        self._written: OrderedDict[tuple[str, ...], _Written] = OrderedDict()
        self._cache_size = cache_size
        self._last_suffix = 0
        self.ready = asyncio.Event()
        self.written_total = 0
        self.dropped_total = 0
        self._overflowed = 0  # dropped for overflow since the last log line
        self._overflow_logged_at = -OVERFLOW_LOG_INTERVAL_SECONDS

    def record(self, regarding: dict[str, Any], type: EventType, reason: str, message: str) -> None:
        """Queue an Event about `regarding` (an object with kind, apiVersion, metadata name/namespace/uid).

        Never blocks and never raises for API trouble: call it from any coroutine on the loop.
        """
        meta = regarding.get("metadata") or {}
        fields = {"kind": regarding.get("kind"), "apiVersion": regarding.get("apiVersion"),
                  **{f: meta.get(f) for f in _META_FIELDS}}
        involved = {f: str(v) for f, v in fields.items() if v}
        if "name" not in involved:
            log.warning("event %s/%s about an object without a name: dropped", type, reason)
            return
        if len(self._pending) >= self._queue_size:
            lost = self._pending.popleft()
            self.dropped_total += 1
            self._note_overflow(lost)
        self._pending.append(_Pending(involved, involved.get("namespace") or CLUSTER_SCOPED_EVENT_NAMESPACE, type,
                                      reason, message[:MAX_MESSAGE_CHARS], self._clock.now(),
                                      self._clock.monotonic()))
        self._wakeup.set()

    async def run(self) -> None:
        """Write queued events with `writers` concurrent writers until cancelled; what is still queued is dropped."""
        self.ready.set()
        tasks = TaskSupervisor("event recorder")
        try:
            for index in range(self._writers):
                tasks.spawn(self._writer(), name=f"writer {index}")
            await tasks.failed.wait()
            raise RuntimeError("an event writer stopped") from tasks.failure
        finally:
            await tasks.stop()
            if self._pending:
                log.info("event recorder stopping: %d unwritten events dropped", len(self._pending))

    @staticmethod
    def _key(event: _Pending) -> tuple[str, ...]:
        return (event.involved.get("uid") or "", event.involved.get("kind", ""), event.namespace,
                event.involved["name"], event.type, event.reason, event.message)

    def _take(self) -> _Pending | None:
        """The oldest queued event whose key no other writer is handling."""
        for index, event in enumerate(self._pending):
            key = self._key(event)
            if key not in self._busy:
                del self._pending[index]
                self._busy.add(key)
                return event
        return None

    async def _writer(self) -> None:
        while True:
            event = self._take()
            if event is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                await self._write(event)
            finally:
                self._busy.discard(self._key(event))
                self._wakeup.set()  # an event held back for this key may go now

    async def _write(self, event: _Pending) -> None:
        key = self._key(event)
        backoff = Backoff(self._retry_initial, 30.0)
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._write_once(key, event)
                self.written_total += 1
                return
            except Retryable as exc:
                delay = backoff.next_delay()
                if isinstance(exc, Throttled) and exc.retry_after_seconds:
                    delay = max(delay, exc.retry_after_seconds)
                if attempt < self._max_attempts:
                    log.debug("event %s about %s: %s; retrying in %.1f s", event.reason, event.involved["name"],
                              exc, delay)
                    await self._clock.sleep(delay)
                    continue
                error: VnodeError = exc
            except VnodeError as exc:
                error = exc  # Invalid, Forbidden, a missing namespace: retrying cannot help
            self.dropped_total += 1
            log.warning("event %s %s about %s dropped: %s", event.type, event.reason, event.involved["name"], error)
            return

    def _note_overflow(self, lost: _Pending) -> None:
        # A burst can overflow the queue thousands of times: one line per interval says how many, not one per event.
        now = self._clock.monotonic()
        self._overflowed += 1
        if now - self._overflow_logged_at < OVERFLOW_LOG_INTERVAL_SECONDS:
            return
        log.warning("event queue full (%d): dropped %d events since the last report, the latest %s %s about %s",
                    self._queue_size, self._overflowed, lost.reason, lost.type, lost.involved.get("name"))
        self._overflowed = 0
        self._overflow_logged_at = now

    async def _write_once(self, key: tuple[str, ...], event: _Pending) -> None:
        previous = self._written.get(key)
        if previous is not None and event.seen - previous.seen <= self._window:
            count = previous.count + 1
            try:
                await self._client.patch(event_path(event.namespace, previous.name),
                                         {"count": count, "lastTimestamp": rfc3339(event.at)})
            except NotFound:
                pass  # the Event aged out of the API (its TTL is one hour by default): start a new one
            else:
                previous.count, previous.seen = count, event.seen
                self._written.move_to_end(key)
                return
        body = self._body(event)
        try:
            await self._client.create(events_path(event.namespace), body)
        except Conflict:
            # The generated name is taken (two writers, same nanosecond): one more try under a fresh name.
            body = self._body(event)
            await self._client.create(events_path(event.namespace), body)
        self._written[key] = _Written(body["metadata"]["name"], 1, event.seen)
        self._written.move_to_end(key)
        while len(self._written) > self._cache_size:
            self._written.popitem(last=False)

    def _body(self, event: _Pending) -> dict[str, Any]:
        # client-go names events `<object name>.<unix nanoseconds in hex>`; keep the suffix strictly increasing.
        self._last_suffix = max(self._last_suffix + 1, int(self._clock.now().timestamp() * 1e9))
        stamp = rfc3339(event.at)
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{event.involved['name']}.{self._last_suffix:x}", "namespace": event.namespace},
            "involvedObject": event.involved,
            "type": event.type,
            "reason": event.reason,
            "message": event.message,
            "source": {"component": self._component, "host": self._host},
            "reportingComponent": self._component,
            "reportingInstance": self._host,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
