"""A Provider wrapper that reports how long each call took and what it raised, to a plain callback.

Owns the timing rules only; it must not know where the numbers go (the callback is vnode's metrics in practice,
but providers/ does not import kubelet/) and must not change what the wrapped provider does or raises.

What is recorded, once per call, as `observe(method, seconds, error)`:
- create_pod, update_pod, delete_pod, list_pods, ping, stats: the call's duration, and the exception it raised.
- container_logs: the time to the first chunk (or to the end of an empty log, or to an error before the first
  chunk). Errors after the first chunk are the stream's, not the call's, and are not recorded.
- exec, attach, port_forward: only errors, with `seconds` None: a session lasts as long as the user wants, so its
  length says nothing about the backend. `StreamClosed` (the client went away) is not a backend error.
- describe, capacity, run: not recorded (cheap accessors, and the long-lived status loop).
Cancellation records nothing: a cancelled call neither succeeded nor failed, and its duration is the caller's
patience rather than the backend's latency; counting it would turn every shutdown or abandoned kubectl into errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from vnode.clock import Clock
from vnode.providers.base import (
    NodeDescription,
    NodeResources,
    PodRef,
    PodStatusUpdate,
    Provider,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.streams import StreamClosed

if TYPE_CHECKING:
    from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot

T = TypeVar("T")
Observe = Callable[[str, float | None, BaseException | None], None]

# Every `method` value the callback can receive.
PROVIDER_METHODS = ("create_pod", "update_pod", "delete_pod", "list_pods", "ping", "stats", "exec", "attach",
                    "port_forward", "container_logs")


class MeteredProvider:
    """`inner`, reporting each call to `observe(method, seconds, error)`; `clock.monotonic` times the calls."""

    def __init__(self, inner: Provider, *, observe: Observe, clock: Clock) -> None:
        self.inner = inner
        self._observe = observe
        self._clock = clock

    async def _timed(self, method: str, call: Awaitable[T]) -> T:
        started = self._clock.monotonic()
        try:
            result = await call
        except Exception as error:  # CancelledError is a BaseException: it passes unrecorded
            self._observe(method, self._clock.monotonic() - started, error)
            raise
        self._observe(method, self._clock.monotonic() - started, None)
        return result

    async def _session(self, method: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except StreamClosed:
            raise
        except Exception as error:
            self._observe(method, None, error)
            raise

    def describe(self) -> NodeDescription:
        return self.inner.describe()

    def capacity(self) -> NodeResources:
        return self.inner.capacity()

    async def run(self, notify: StatusCallback) -> None:
        await self.inner.run(notify)

    async def create_pod(self, pod: ResolvedPod) -> None:
        await self._timed("create_pod", self.inner.create_pod(pod))

    async def update_pod(self, pod: ResolvedPod) -> None:
        await self._timed("update_pod", self.inner.update_pod(pod))

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        await self._timed("delete_pod", self.inner.delete_pod(ref, grace_period_seconds))

    async def list_pods(self) -> list[PodStatusUpdate]:
        return await self._timed("list_pods", self.inner.list_pods())

    async def ping(self) -> None:
        await self._timed("ping", self.inner.ping())

    async def stats(self) -> UsageSnapshot:
        return await self._timed("stats", self.inner.stats())

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        return self._logs(ref, container, options)

    async def _logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        # Runs at the first `anext`: a log nobody starts reading never reaches the backend.
        started = self._clock.monotonic()
        try:
            chunks = self.inner.container_logs(ref, container, options)
            first = await anext(chunks)
        except StopAsyncIteration:
            self._observe("container_logs", self._clock.monotonic() - started, None)
            return
        except Exception as error:
            self._observe("container_logs", self._clock.monotonic() - started, error)
            raise
        self._observe("container_logs", self._clock.monotonic() - started, None)
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            # Close the inner iterator now, not at garbage collection: that is what stops a follow in the backend.
            aclose: Callable[[], Awaitable[None]] | None = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        return await self._session("exec", self.inner.exec(ref, container, command, io))

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        return await self._session("attach", self.inner.attach(ref, container, io))

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        await self._session("port_forward", self.inner.port_forward(ref, port, stream))


if TYPE_CHECKING:
    _check: type[Provider] = MeteredProvider
