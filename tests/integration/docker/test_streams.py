"""DockerStreams against a real engine: logs, exec, attach, port-forward and stats of containers labelled as vnode
labels a pod's (a sandbox holding the network namespace, app containers joining it), created here directly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiodocker
import pytest
from aiodocker.containers import DockerContainer

from tests.support.wait import eventually
from tests.unit.providers.streamio_fakes import MemorySource, MemoryStream, sink, stream_io
from vnode.clock import SystemClock
from vnode.errors import NotFound, VnodeError
from vnode.providers.base import PodRef
from vnode.providers.docker import naming
from vnode.providers.docker.streams import DockerStreams
from vnode.providers.streams import LogOptions, TerminalSize

WAIT_SECONDS = 20.0


def _engine() -> str:
    host = os.environ.get("DOCKER_HOST")
    if not host:
        reason = os.environ.get("VNODE_TEST_DOCKER_UNAVAILABLE", "DOCKER_HOST is not set")
        if os.environ.get("CI"):
            pytest.fail(f"no Docker engine for the Docker stream tests: {reason}")
        pytest.skip(reason)
    return host


@dataclass
class Pod:
    """One pod's containers in the engine, as the provider would have made them."""

    docker: aiodocker.Docker
    node: str
    ref: PodRef
    streams: DockerStreams
    sandbox_id: str = ""

    async def start_sandbox(self) -> None:
        sandbox = await self._create(naming.ContainerKey(self.ref, "sandbox", "", 0), {
            "Image": os.environ.get("VNODE_TEST_PAUSE_IMAGE", "vnode-test/pause:1"),
            "Cmd": ["sleep", "2147483647"], "HostConfig": {"NetworkMode": "none"}})
        self.sandbox_id = sandbox.id

    async def app(self, name: str, *command: str, attempt: int = 0, wait_exit: bool = False,
                  **config: Any) -> DockerContainer:
        host = {"NetworkMode": f"container:{self.sandbox_id}", **config.pop("HostConfig", {})}
        container = await self._create(naming.ContainerKey(self.ref, "app", name, attempt), {
            "Image": os.environ.get("VNODE_TEST_TOOLS_IMAGE", "vnode-test/tools:1"), "Cmd": list(command),
            "HostConfig": host, **config})
        if wait_exit:
            await container.wait()
        return container

    async def _create(self, key: naming.ContainerKey, config: dict[str, Any]) -> DockerContainer:
        config["Labels"] = naming.labels(self.node, key)
        container = await self.docker.containers.create(config, name=naming.container_name(self.node, key))
        await container.start()
        return container

    async def logs(self, name: str, **options: Any) -> bytes:
        chunks = [chunk async for chunk in self.streams.container_logs(self.ref, name, LogOptions(**options))]
        return b"".join(chunks)


@pytest.fixture
async def pod() -> AsyncIterator[Pod]:
    node = f"streams-{uuid.uuid4().hex[:8]}"
    async with aiodocker.Docker(url=_engine()) as docker:
        ref = PodRef("default", "p", str(uuid.uuid4()))
        try:
            world = Pod(docker, node, ref, DockerStreams(docker, node, SystemClock()))
            await world.start_sandbox()
            yield world
        finally:
            for container in await docker.containers.list(all=True, filters=naming.node_filter(node)):
                await container.delete(force=True)


# Logs


async def test_logs_have_stdout_and_stderr(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "echo out; echo err >&2", wait_exit=True)
    assert sorted((await pod.logs("c")).splitlines()) == [b"err", b"out"]


async def test_logs_timestamps_are_rfc3339_nano(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "echo one; echo two", wait_exit=True)
    lines = (await pod.logs("c", timestamps=True)).splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z"  # Go trims the fraction's trailing zeros
    matches = [re.fullmatch(rf"{stamp} (\w+)", line.decode()) for line in lines]
    assert [match.group(2) if match else line for match, line in zip(matches, lines, strict=True)] == ["one", "two"]


async def test_logs_tail_lines(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done", wait_exit=True)
    assert await pod.logs("c", tail_lines=2) == b"4\n5\n"


async def test_logs_since_time_is_precise_below_the_second(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "echo 1; echo 2; sleep 0.01; echo 3; echo 4", wait_exit=True)
    third = (await pod.logs("c", timestamps=True)).splitlines()[2]
    match = re.match(rb"(\S+?)(?:\.(\d+))?Z ", third)
    assert match is not None, third
    whole, fraction = match.groups()
    since = datetime.fromisoformat(whole.decode()).replace(
        tzinfo=UTC, microsecond=int((fraction or b"0")[:6].ljust(6, b"0")))
    assert await pod.logs("c", since_time=since) == b"3\n4\n"


async def test_logs_limit_bytes_cuts_exactly(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "echo one; echo two", wait_exit=True)
    assert await pod.logs("c", limit_bytes=6) == b"one\ntw"


async def test_logs_of_a_tty_container(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "echo one; echo two", Tty=True, wait_exit=True)
    assert await pod.logs("c", tail_lines=1) == b"two\r\n"  # the terminal turns \n into \r\n


async def test_logs_follow_sees_new_lines_and_ends_when_the_container_stops(pod: Pod) -> None:
    await pod.app("c", "sh", "-c", "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second")
    seen = bytearray()
    first = asyncio.Event()

    async def follow() -> None:
        async for chunk in pod.streams.container_logs(pod.ref, "c", LogOptions(follow=True)):
            seen.extend(chunk)
            if b"first" in seen:
                first.set()

    async with asyncio.timeout(WAIT_SECONDS):
        reading = asyncio.create_task(follow())
        await first.wait()
        # Not asserting touch's exit code: the container exits right after it, and the engine may record the
        # exec as killed (137) when the container's end beats its own bookkeeping of the finished exec.
        await pod.streams.exec(pod.ref, "c", ["touch", "/tmp/go"], stream_io())
        await reading  # ends by itself once the container exited
    assert bytes(seen) == b"first\nsecond\n"


async def test_logs_previous_reads_the_earlier_instance(pod: Pod) -> None:
    await pod.app("c", "echo", "old", wait_exit=True)
    await pod.app("c", "echo", "new", attempt=1, wait_exit=True)
    assert (await pod.logs("c", previous=True), await pod.logs("c")) == (b"old\n", b"new\n")


async def test_logs_previous_without_one_is_not_found(pod: Pod) -> None:
    await pod.app("c", "echo", "only", wait_exit=True)
    with pytest.raises(NotFound, match='previous terminated container "c" in pod "p" not found'):
        await pod.logs("c", previous=True)


# Exec


async def test_exec_returns_exit_code_and_separates_stdout_and_stderr(pod: Pod) -> None:
    await pod.app("c", "sleep", "600")
    io = stream_io()
    code = await pod.streams.exec(pod.ref, "c", ["sh", "-c", "echo out; echo err >&2; exit 3"], io)
    assert (code, sink(io.stdout).data, sink(io.stderr).data) == (3, b"out\n", b"err\n")


async def test_exec_stdin_eof_ends_cat(pod: Pod) -> None:
    await pod.app("c", "sleep", "600")
    io = stream_io(MemorySource(b"hello ", b"world", eof=True))
    assert await pod.streams.exec(pod.ref, "c", ["cat"], io) == 0
    assert sink(io.stdout).data == b"hello world"


async def test_exec_tty_sees_the_terminal_size(pod: Pod) -> None:
    await pod.app("c", "sleep", "600")
    io = stream_io(MemorySource(b"stty size; exit 7\n"), tty=True)
    io.resizes.put(TerminalSize(width=100, height=30))
    assert await pod.streams.exec(pod.ref, "c", ["sh"], io) == 7
    assert b"30 100" in sink(io.stdout).data


async def test_exec_cancelled_leaves_background_processes_running(pod: Pod) -> None:
    await pod.app("c", "sleep", "600")
    io = stream_io()
    # Like Jenkins' `nohup sh -c "(...) >&- 2>&- &"` wrapper (busybox has no nohup applet; nothing sends a SIGHUP).
    session = asyncio.create_task(pod.streams.exec(pod.ref, "c", [
        "sh", "-c", "sh -c 'sleep 1; touch /tmp/x' >/dev/null 2>&1 & echo started; sleep 600"], io))
    await sink(io.stdout).wait_for(lambda data: b"started" in data, "the command to start")
    session.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await session

    async def file_exists() -> bool:
        return await pod.streams.exec(pod.ref, "c", ["test", "-e", "/tmp/x"], stream_io()) == 0

    await eventually(file_exists, timeout_seconds=WAIT_SECONDS, what="the background process to touch /tmp/x")


async def test_exec_in_a_stopped_container_is_not_found(pod: Pod) -> None:
    await pod.app("c", "true", wait_exit=True)
    with pytest.raises(NotFound, match='container "c" in pod "p" is not running'):
        await pod.streams.exec(pod.ref, "c", ["true"], stream_io())


# Attach


async def test_attach_copies_both_ways_and_returns_the_exit_code(pod: Pod) -> None:
    container = await pod.app("c", "cat", OpenStdin=True, StdinOnce=False, AttachStdin=True)
    io = stream_io(MemorySource(b"ping\n"))
    session = asyncio.create_task(pod.streams.attach(pod.ref, "c", io))
    await sink(io.stdout).wait_for(lambda data: data == b"ping\n", "the echo")
    await container.kill(signal="SIGKILL")
    async with asyncio.timeout(WAIT_SECONDS):
        assert await session == 137  # 128 + SIGKILL


# Port-forward


async def test_port_forward_echoes_and_half_closes(pod: Pod) -> None:
    await pod.app("c", "nc", "-ll", "-p", "8080", "-e", "cat")

    async def forwarded() -> MemoryStream | None:
        stream = MemoryStream(b"hello", eof=True)
        try:
            await pod.streams.port_forward(pod.ref, 8080, stream)
        except VnodeError as exc:
            assert "connection refused" in str(exc)
            return None  # nc is not listening yet
        return stream

    stream = await eventually(forwarded, timeout_seconds=WAIT_SECONDS, what="a forwarded echo")
    assert stream is not None
    assert (stream.data, stream.write_closed) == (b"hello", True)


async def test_port_forward_to_a_closed_port_says_connection_refused(pod: Pod) -> None:
    with pytest.raises(VnodeError, match="failed to connect to localhost:9 .*connection refused"):
        await pod.streams.port_forward(pod.ref, 9, MemoryStream(eof=True))


# Stats


async def test_stats_report_running_app_containers(pod: Pod) -> None:
    await pod.app("c", "sleep", "600", HostConfig={"Memory": 64 * 1024 * 1024})
    await pod.app("gone", "true", wait_exit=True)
    snapshot = await pod.streams.stats()
    (usage,) = [p for p in snapshot.pods if p.ref == pod.ref]
    (container,) = usage.containers
    assert (container.name, container.memory_limit_bytes) == ("c", 64 * 1024 * 1024)
    assert container.cpu_usage_core_nanoseconds > 0 and container.memory_working_set_bytes > 0
    assert abs((container.start_time - snapshot.time).total_seconds()) < 60
