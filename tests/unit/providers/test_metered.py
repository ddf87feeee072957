"""MeteredProvider: what it reports for each kind of call, on a fake provider driven by a manual clock.

Cancellation is recorded as nothing (neither a duration nor an error): see vnode/providers/metered.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime

import pytest

from vnode.clock import ManualClock
from vnode.errors import BackendUnavailable, NotFound
from vnode.providers.base import (
    NodeDescription,
    NodeResources,
    PodRef,
    PodStatusUpdate,
    Provider,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.metered import MeteredProvider
from vnode.providers.streams import (
    ByteStream,
    LogOptions,
    ResizeQueue,
    StreamClosed,
    StreamIO,
    UsageSnapshot,
)

REF = PodRef("default", "web-0", "uid-1")
POD = ResolvedPod(REF, {"metadata": {"name": "web-0", "namespace": "default", "uid": "uid-1"}})
Observation = tuple[str, float | None, BaseException | None]


class FakeProvider:
    """Each call runs `behaviour` (advance the clock, raise, block) then answers; logs yield `log_chunks`."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.behaviour: Callable[[], Awaitable[None]] = self._instant
        self.log_chunks: list[bytes | BaseException] = [b"a\n", b"b\n"]
        self.log_closed = asyncio.Event()

    async def _instant(self) -> None:
        return None

    def describe(self) -> NodeDescription:
        return NodeDescription(provider="fake", container_runtime_version="fake://0")

    def capacity(self) -> NodeResources:
        return NodeResources(cpu="4", memory="8Gi", pods="10")

    async def run(self, notify: StatusCallback) -> None:
        await self.behaviour()

    async def create_pod(self, pod: ResolvedPod) -> None:
        await self.behaviour()

    async def update_pod(self, pod: ResolvedPod) -> None:
        await self.behaviour()

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        await self.behaviour()

    async def list_pods(self) -> list[PodStatusUpdate]:
        await self.behaviour()
        return [PodStatusUpdate(REF, "Running")]

    async def ping(self) -> None:
        await self.behaviour()

    async def stats(self) -> UsageSnapshot:
        await self.behaviour()
        return UsageSnapshot(time=datetime(2026, 7, 1, tzinfo=UTC), pods=())

    async def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        try:
            await self.behaviour()
            for chunk in self.log_chunks:
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            self.log_closed.set()

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        await self.behaviour()
        return 3

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        await self.behaviour()
        return 0

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        await self.behaviour()


class Harness:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.fake = FakeProvider(self.clock)
        self.observed: list[Observation] = []
        # The wrapper is a Provider for mypy: the agent holds it where a Provider is expected.
        self.provider: Provider = MeteredProvider(self.fake, observe=self._observe, clock=self.clock)

    def _observe(self, method: str, seconds: float | None, error: BaseException | None) -> None:
        self.observed.append((method, seconds, error))

    def takes(self, seconds: float) -> None:
        async def behaviour() -> None:
            await self.clock.advance(seconds)
        self.fake.behaviour = behaviour

    def fails(self, error: BaseException, after_seconds: float = 0.0) -> None:
        async def behaviour() -> None:
            await self.clock.advance(after_seconds)
            raise error
        self.fake.behaviour = behaviour


@pytest.fixture
def harness() -> Harness:
    return Harness()


def io() -> StreamIO:
    return StreamIO(stdin=None, stdout=None, stderr=None, tty=False, resizes=ResizeQueue())


TIMED_CALLS: dict[str, Callable[[Provider], Awaitable[object]]] = {
    "create_pod": lambda p: p.create_pod(POD),
    "update_pod": lambda p: p.update_pod(POD),
    "delete_pod": lambda p: p.delete_pod(REF, 30),
    "list_pods": lambda p: p.list_pods(),
    "ping": lambda p: p.ping(),
    "stats": lambda p: p.stats(),
}


@pytest.mark.parametrize("method", sorted(TIMED_CALLS))
async def test_timed_calls_report_their_duration_under_their_name(harness: Harness, method: str) -> None:
    harness.takes(1.5)
    await TIMED_CALLS[method](harness.provider)
    assert harness.observed == [(method, 1.5, None)]


async def test_results_pass_through_unchanged(harness: Harness) -> None:
    assert await harness.provider.list_pods() == [PodStatusUpdate(REF, "Running")]


async def test_a_failed_call_reports_its_duration_and_error_and_reraises_it(harness: Harness) -> None:
    error = BackendUnavailable("ECI is down")
    harness.fails(error, after_seconds=2.0)
    with pytest.raises(BackendUnavailable) as raised:
        await harness.provider.create_pod(POD)
    assert raised.value is error
    assert harness.observed == [("create_pod", 2.0, error)]


async def test_errors_keep_their_class(harness: Harness) -> None:
    """The metric labels errors by class name, so the wrapper must hand over the original exception."""
    harness.fails(NotFound("no pod"))
    with pytest.raises(NotFound):
        await harness.provider.delete_pod(REF, 0)
    assert [type(error).__name__ for _, _, error in harness.observed] == ["NotFound"]


async def test_accessors_and_the_status_loop_are_not_metered(harness: Harness) -> None:
    assert harness.provider.describe().provider == "fake"
    assert harness.provider.capacity().pods == "10"
    await harness.provider.run(lambda update: None)
    assert harness.observed == []


async def test_cancelled_call_records_nothing(harness: Harness) -> None:
    entered, never = asyncio.Event(), asyncio.Event()

    async def blocks() -> None:
        entered.set()
        await never.wait()
    harness.fake.behaviour = blocks
    call = asyncio.create_task(harness.provider.ping(), name="blocked ping")
    await entered.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert harness.observed == []


async def test_logs_report_the_time_to_the_first_chunk(harness: Harness) -> None:
    harness.takes(0.75)
    chunks = [chunk async for chunk in harness.provider.container_logs(REF, "web", LogOptions())]
    assert chunks == [b"a\n", b"b\n"]
    assert harness.observed == [("container_logs", 0.75, None)]


async def test_logs_error_before_the_first_chunk_is_reported(harness: Harness) -> None:
    error = NotFound('container "web" not found in pod "web-0"')
    harness.fails(error, after_seconds=0.25)
    with pytest.raises(NotFound):
        await anext(harness.provider.container_logs(REF, "web", LogOptions()))
    assert harness.observed == [("container_logs", 0.25, error)]


async def test_an_empty_log_is_a_success(harness: Harness) -> None:
    harness.fake.log_chunks = []
    assert [chunk async for chunk in harness.provider.container_logs(REF, "web", LogOptions())] == []
    assert harness.observed == [("container_logs", 0.0, None)]


async def test_logs_error_after_the_first_chunk_is_not_a_call_error(harness: Harness) -> None:
    harness.fake.log_chunks = [b"a\n", BackendUnavailable("stream cut")]
    chunks = harness.provider.container_logs(REF, "web", LogOptions())
    assert await anext(chunks) == b"a\n"
    with pytest.raises(BackendUnavailable):
        await anext(chunks)
    assert harness.observed == [("container_logs", 0.0, None)]


async def test_closing_the_log_closes_the_backend_stream(harness: Harness) -> None:
    """A client that stops reading a follow must stop the backend's stream at once, not at garbage collection."""
    chunks = harness.provider.container_logs(REF, "web", LogOptions(follow=True))
    assert await anext(chunks) == b"a\n"
    await chunks.aclose()  # type: ignore[attr-defined]
    assert harness.fake.log_closed.is_set()


async def test_logs_never_read_never_reach_the_backend(harness: Harness) -> None:
    harness.provider.container_logs(REF, "web", LogOptions())
    assert harness.observed == []
    assert not harness.fake.log_closed.is_set()


async def test_a_session_that_ends_is_not_recorded(harness: Harness) -> None:
    """Sessions are counted on error only; their length is the user's, not the backend's."""
    harness.takes(600)
    assert await harness.provider.exec(REF, "web", ["sh"], io()) == 3
    assert harness.observed == []


@pytest.mark.parametrize("method", ["exec", "attach", "port_forward"])
async def test_a_session_error_is_counted_without_a_duration(harness: Harness, method: str) -> None:
    error = NotFound("no container")
    harness.fails(error, after_seconds=1.0)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "exec": lambda: harness.provider.exec(REF, "web", ["true"], io()),
        "attach": lambda: harness.provider.attach(REF, "web", io()),
        "port_forward": lambda: harness.provider.port_forward(REF, 8080, None),  # type: ignore[arg-type]
    }
    with pytest.raises(NotFound):
        await calls[method]()
    assert harness.observed == [(method, None, error)]


async def test_the_client_leaving_a_session_is_not_a_backend_error(harness: Harness) -> None:
    harness.fails(StreamClosed())
    with pytest.raises(StreamClosed):
        await harness.provider.attach(REF, "web", io())
    assert harness.observed == []
