"""The mock provider's stream calls (logs, exec, attach, port-forward, stats), driven through MockProvider with a
ManualClock: containers start at once, exit and tick only when the test moves the clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.wait import eventually
from tests.unit.providers.streamio_fakes import WAIT_SECONDS, MemorySink, MemorySource, MemoryStream, sink, stream_io
from vnode.clock import ManualClock
from vnode.config import MockProviderSettings
from vnode.errors import NotFound
from vnode.providers.base import EnvVar, PodRef, PodStatusUpdate, ResolvedPod
from vnode.providers.mock import MockProvider
from vnode.providers.streams import LogOptions


@dataclass
class Mock:
    provider: MockProvider
    clock: ManualClock
    work_dir: Path

    async def start_pod(self, name: str, env: dict[str, str] | None = None, *, containers: tuple[str, ...] = ("main",),
                        init: tuple[str, ...] = (), restart_policy: str = "Always", wait: bool = True) -> PodRef:
        ref = PodRef("default", name, f"uid-{name}")
        spec: dict[str, Any] = {"restartPolicy": restart_policy,
                                "containers": [{"name": c, "image": "busybox"} for c in containers],
                                "initContainers": [{"name": c, "image": "busybox"} for c in init]}
        resolved_env = {c: tuple(EnvVar(k, v) for k, v in (env or {}).items()) for c in containers + init}
        pod = {"metadata": {"name": name, "namespace": "default", "uid": ref.uid}, "spec": spec}
        await self.provider.create_pod(ResolvedPod(ref, pod, env=resolved_env))
        if wait:
            await self.wait_status(ref, lambda status: status.phase == "Running", "Running")
        return ref

    async def status(self, ref: PodRef) -> PodStatusUpdate | None:
        return next((s for s in await self.provider.list_pods() if s.ref == ref), None)

    async def wait_status(self, ref: PodRef, predicate: Any, what: str, *, tick_seconds: float = 0) -> None:
        """Wait until the pod's status satisfies `predicate`, moving the clock by `tick_seconds` per look."""
        async def probe() -> bool:
            status = await self.status(ref)
            if status is not None and predicate(status):
                return True
            await self.clock.advance(tick_seconds)
            return False
        await eventually(probe, timeout_seconds=WAIT_SECONDS, what=f"pod {ref.name} {what}")


@contextlib.asynccontextmanager
async def running_mock(tmp_path: Path, settings: MockProviderSettings | None = None) -> AsyncIterator[Mock]:
    clock = ManualClock()
    provider = MockProvider(settings or MockProviderSettings(), clock, work_dir=tmp_path / "work")
    runner = asyncio.create_task(provider.run(lambda update: None), name="mock provider")
    try:
        yield Mock(provider, clock, tmp_path / "work")
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


@pytest.fixture
async def mock(tmp_path: Path) -> AsyncIterator[Mock]:
    async with running_mock(tmp_path) as running:
        yield running


async def read_log(mock: Mock, ref: PodRef, container: str = "main", **options: Any) -> bytes:
    chunks = mock.provider.container_logs(ref, container, LogOptions(**options))
    return b"".join([chunk async for chunk in chunks])


@contextlib.asynccontextmanager
async def following(mock: Mock, ref: PodRef, container: str = "main") -> AsyncIterator[MemorySink]:
    """Follow the container's log into a sink for as long as the block runs."""
    out = MemorySink()

    async def copy() -> None:
        chunks = mock.provider.container_logs(ref, container, LogOptions(follow=True))
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                await out.write(chunk)

    task = asyncio.create_task(copy(), name="log follower")
    try:
        yield out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# Logs


async def test_a_started_container_logs_its_mock_log_lines(mock: Mock) -> None:
    ref = await mock.start_pod("talker", {"VNODE_MOCK_LOG": "first line\nsecond line"})
    assert await read_log(mock, ref) == b"first line\nsecond line\n"


async def test_follow_sees_ticks_arrive_as_the_clock_moves(mock: Mock) -> None:
    ref = await mock.start_pod("ticker", {"VNODE_MOCK_LOG": "hello", "VNODE_MOCK_LOG_EVERY_SECONDS": "5"})
    async with following(mock, ref) as out:
        await out.wait_for(lambda data: data == b"hello\n", "the backlog")

        async def ticked() -> bool:
            await mock.clock.advance(5)
            return b"tick 2\n" in out.data
        await eventually(ticked, timeout_seconds=WAIT_SECONDS, what="two ticks")
    assert out.data.startswith(b"hello\ntick 1\ntick 2\n")


async def test_previous_is_the_instance_before_a_restart(mock: Mock) -> None:
    ref = await mock.start_pod("restarter", {"VNODE_MOCK_LOG": "starting", "VNODE_MOCK_RUN_SECONDS": "10"})
    mock.provider.append_log(ref.uid, "main", b"only in the first run\n")
    await mock.wait_status(ref, lambda s: s.containers[0].restart_count >= 1, "restarted", tick_seconds=2.5)
    assert await read_log(mock, ref, previous=True) == b"starting\nonly in the first run\n"
    assert await read_log(mock, ref) == b"starting\n"


async def test_previous_without_a_restart_is_not_found(mock: Mock) -> None:
    ref = await mock.start_pod("talker", {"VNODE_MOCK_LOG": "x"})
    with pytest.raises(NotFound, match='^previous terminated container "main" in pod "talker" not found$'):
        await read_log(mock, ref, previous=True)


async def test_an_init_container_has_a_finished_log(mock: Mock) -> None:
    ref = await mock.start_pod("with-init", {"VNODE_MOCK_LOG": "init done"}, init=("setup",))
    assert await read_log(mock, ref, "setup", follow=True) == b"init done\n"  # follow ends: it finished


async def test_follow_ends_when_the_pod_is_deleted(mock: Mock) -> None:
    ref = await mock.start_pod("talker", {"VNODE_MOCK_LOG": "bye"})
    out = MemorySink()

    async def follow() -> None:
        async for chunk in mock.provider.container_logs(ref, "main", LogOptions(follow=True)):
            await out.write(chunk)
    reading = asyncio.create_task(follow())
    await out.wait_for(lambda data: data == b"bye\n", "the backlog")
    await mock.provider.delete_pod(ref, 0)
    await asyncio.wait_for(reading, WAIT_SECONDS)  # ended by itself


async def test_logs_of_a_container_not_started_yet_are_not_found(tmp_path: Path) -> None:
    async with running_mock(tmp_path, MockProviderSettings(start_delay_seconds=60)) as slow:
        ref = await slow.start_pod("pending", wait=False)
        waiting = '^container "main" in pod "pending" is waiting to start: ContainerCreating$'
        with pytest.raises(NotFound, match=waiting):
            await read_log(slow, ref)


async def test_logs_of_unknown_pods_and_containers_are_not_found(mock: Mock) -> None:
    ref = await mock.start_pod("talker")
    with pytest.raises(NotFound, match='^pod "default/ghost" not found$'):
        await read_log(mock, PodRef("default", "ghost", "uid-ghost"))
    with pytest.raises(NotFound, match='^container "nosuch" not found in pod "default/talker"$'):
        await read_log(mock, ref, "nosuch")


# Exec


async def test_exec_runs_in_the_pod_directory_with_the_containers_env(mock: Mock) -> None:
    ref = await mock.start_pod("box", {"GREETING": "hello"})
    io = stream_io()
    code = await mock.provider.exec(ref, "main", ["sh", "-c", 'pwd; echo "$VNODE_POD_DIR $GREETING"; exit 3'], io)
    pod_dir = mock.work_dir / "default_box_uid-box"
    assert code == 3
    assert sink(io.stdout).data == f"{pod_dir}\n{pod_dir} hello\n".encode()


async def test_containers_of_a_pod_share_its_directory(mock: Mock) -> None:
    ref = await mock.start_pod("agent", containers=("jnlp", "build"))
    assert await mock.provider.exec(ref, "build", ["sh", "-c", "echo built > result"], stream_io()) == 0
    io = stream_io()
    assert await mock.provider.exec(ref, "jnlp", ["cat", "result"], io) == 0
    assert sink(io.stdout).data == b"built\n"


async def test_the_pod_directory_goes_with_the_pod(mock: Mock) -> None:
    ref = await mock.start_pod("box")
    await mock.provider.exec(ref, "main", ["touch", "file"], stream_io())
    pod_dir = mock.work_dir / "default_box_uid-box"
    assert (pod_dir / "file").exists()
    await mock.provider.delete_pod(ref, 0)
    assert not pod_dir.exists()


async def test_the_default_work_dir_is_temporary_and_removed_when_run_ends() -> None:
    provider = MockProvider(MockProviderSettings(), ManualClock())
    runner = asyncio.create_task(provider.run(lambda update: None))
    try:
        ref = PodRef("default", "box", "uid-box")
        meta = {"name": "box", "namespace": "default", "uid": "uid-box"}
        await provider.create_pod(ResolvedPod(ref, {"metadata": meta, "spec": {"containers": [{"name": "main"}]}}))

        async def running() -> bool:
            return any(s.phase == "Running" for s in await provider.list_pods())
        await eventually(running, timeout_seconds=WAIT_SECONDS, what="the pod running")
        io = stream_io()
        await provider.exec(ref, "main", ["sh", "-c", 'echo "$VNODE_POD_DIR"'], io)
        root = Path(sink(io.stdout).data.decode().strip()).parent
        assert root.name.startswith("vnode-mock-") and root.is_dir()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    assert not root.exists()


async def test_exec_into_a_stopped_container_is_not_found(mock: Mock) -> None:
    ref = await mock.start_pod("job", {"VNODE_MOCK_RUN_SECONDS": "1"}, restart_policy="Never")
    await mock.wait_status(ref, lambda s: s.phase == "Succeeded", "Succeeded", tick_seconds=1)
    with pytest.raises(NotFound, match='^container "main" in pod "job" is not running$'):
        await mock.provider.exec(ref, "main", ["true"], stream_io())


async def test_exec_into_an_unknown_container_is_not_found(mock: Mock) -> None:
    ref = await mock.start_pod("box")
    with pytest.raises(NotFound, match='^container "nosuch" not found in pod "default/box"$'):
        await mock.provider.exec(ref, "nosuch", ["true"], stream_io())


# Attach


async def test_attach_echoes_input_into_the_output_and_the_log(mock: Mock) -> None:
    ref = await mock.start_pod("box", {"VNODE_MOCK_LOG": "before"})
    stdin = MemorySource()
    io = stream_io(stdin)
    attach = asyncio.create_task(mock.provider.attach(ref, "main", io))
    stdin.feed(b"hello attach\n")
    assert await sink(io.stdout).wait_for(lambda data: data == b"hello attach\n", "the echo") == b"hello attach\n"
    assert await read_log(mock, ref) == b"before\nhello attach\n"
    await mock.provider.delete_pod(ref, 0)
    assert await asyncio.wait_for(attach, WAIT_SECONDS) == 0


async def test_attach_keeps_streaming_after_stdin_eof_and_returns_the_exit_code(mock: Mock) -> None:
    ref = await mock.start_pod("job", {"VNODE_MOCK_RUN_SECONDS": "10", "VNODE_MOCK_EXIT_CODE": "3"},
                               restart_policy="Never")
    io = stream_io(MemorySource(b"typed\n", eof=True))
    attach = asyncio.create_task(mock.provider.attach(ref, "main", io))
    await sink(io.stdout).wait_for(lambda data: data == b"typed\n", "the echo")
    mock.provider.append_log(ref.uid, "main", b"later output\n")
    await sink(io.stdout).wait_for(lambda data: data == b"typed\nlater output\n", "output after stdin's EOF")
    await mock.wait_status(ref, lambda s: s.phase == "Failed", "Failed", tick_seconds=5)
    assert await asyncio.wait_for(attach, WAIT_SECONDS) == 3


# Port-forward


async def test_port_forward_echoes_until_the_client_closes(mock: Mock) -> None:
    ref = await mock.start_pod("web")
    stream = MemoryStream(b"ping ", b"pong", eof=True)
    await asyncio.wait_for(mock.provider.port_forward(ref, 8080, stream), WAIT_SECONDS)
    assert stream.data == b"ping pong"
    assert stream.write_closed


async def test_port_forward_to_an_unknown_pod_is_not_found(mock: Mock) -> None:
    with pytest.raises(NotFound, match='^pod "default/ghost" not found$'):
        await mock.provider.port_forward(PodRef("default", "ghost", "uid-ghost"), 80, MemoryStream(eof=True))


# Stats


async def test_stats_cover_running_containers_and_grow_with_running_time(mock: Mock) -> None:
    ref = await mock.start_pod("busy", containers=("a", "b"))
    first = await mock.provider.stats()
    await mock.clock.advance(10)
    second = await mock.provider.stats()
    [pod] = first.pods
    assert pod.ref == ref and [c.name for c in pod.containers] == ["a", "b"]
    for before, after in zip(pod.containers, second.pods[0].containers, strict=True):
        assert before.cpu_usage_core_nanoseconds > 0 and before.memory_working_set_bytes > 0
        assert after.cpu_usage_core_nanoseconds - before.cpu_usage_core_nanoseconds == 10_000_000  # 1 ms/s
        assert after.start_time == before.start_time == pod.start_time


async def test_stats_leave_out_deleted_pods(mock: Mock) -> None:
    ref = await mock.start_pod("gone")
    await mock.provider.delete_pod(ref, 0)
    assert (await mock.provider.stats()).pods == ()
