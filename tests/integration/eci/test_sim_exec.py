"""Exec into a sim group's running container: a real host process in the group's own directory, its exit code, its
output and its stdin; the directory is shared by the group's containers and removed with the group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vnode.clock import ManualClock
from vnode.providers.streams import ResizeQueue, StreamIO
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec
from vnode.sandbox.eci.sim_runtime import SimRuntime, SimTimings
from vnode.sandbox.eci.store import GroupStore


class Collected:
    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)

    async def read(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


@pytest.fixture
async def running() -> AsyncIterator[tuple[SimRuntime, ContainerGroup, ManualClock]]:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    runtime = SimRuntime(clock, SimTimings(scheduling_seconds=0, pending_seconds=0))
    task = asyncio.create_task(runtime.run(), name="sim runtime")
    draft = ContainerGroup(id="", name="build", seq=0, region_id="cn-hangzhou", zone_id="cn-hangzhou-h", cpu=2,
                           memory=4, restart_policy="Never", tags=(),
                           containers=(ContainerSpec("a", "busybox", env=(("GREETING", "hi"),)),
                                       ContainerSpec("b", "busybox")),
                           init_containers=(), volumes=(), created=clock.now(), intranet_ip="")
    group, _ = GroupStore(clock, runtime).create(draft, None)
    try:
        yield runtime, group, clock
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def io(stdout: Collected, stdin: Chunks | None = None) -> StreamIO:
    return StreamIO(stdin=stdin, stdout=stdout, stderr=None, tty=False, resizes=ResizeQueue())


async def test_exec_returns_the_commands_exit_code_and_output(
        running: tuple[SimRuntime, ContainerGroup, ManualClock]) -> None:
    runtime, group, _ = running
    out = Collected()
    code = await runtime.exec(group, "a", ["sh", "-c", "echo $GREETING; exit 5"], io(out))
    assert (code, out.data) == (5, b"hi\n")


async def test_exec_feeds_stdin(running: tuple[SimRuntime, ContainerGroup, ManualClock]) -> None:
    runtime, group, _ = running
    out = Collected()
    assert await runtime.exec(group, "a", ["cat"], io(out, Chunks(b"one ", b"two"))) == 0
    assert out.data == b"one two"


async def test_containers_of_a_group_share_its_directory_until_it_is_deleted(
        running: tuple[SimRuntime, ContainerGroup, ManualClock]) -> None:
    runtime, group, _ = running
    where = Collected()
    await runtime.exec(group, "a", ["sh", "-c", "echo shared > file; pwd"], io(where))
    read = Collected()
    await runtime.exec(group, "b", ["cat", "file"], io(read))
    assert read.data == b"shared\n"
    runtime.stop(group)
    assert not await asyncio.to_thread(Path(where.data.decode().strip()).exists)
