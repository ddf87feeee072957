"""Logs and exec through the emulator's docker runtime: real containers writing while followed, and exec into them
through `EciExecBridge`. Needs the test Docker engine (`make test`)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, eci_client
from tests.support.docker_world import docker_provider_settings, remove_node_containers, tools_image
from tests.support.eci_emulator import serving
from tests.support.wait import eventually
from tests.unit.providers.streamio_fakes import MemorySource, sink, stream_io
from vnode.clock import SystemClock
from vnode.config import DockerProviderSettings, EciEmulatorSettings
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.exec_bridge import EciExecBridge
from vnode.providers.eci.logs import EciLogReader
from vnode.providers.streams import LogOptions, TerminalSize
from vnode.sandbox.eci.server import EciEmulator

LINES = 40


@pytest.fixture
async def docker_emulator(tmp_path: Path) -> AsyncIterator[EciEmulator]:
    engine = docker_provider_settings(tmp_path)
    node = f"test-eci-streams-{uuid.uuid4().hex[:8]}"  # the runtime clears its node's leftovers: one per test
    settings = EciEmulatorSettings(
        port=0, access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET, region_id=REGION,
        runtime="docker", docker=DockerProviderSettings(**{k: v for k, v in engine.items() if k != "kind"}),
        docker_node_name=node, scheduling_seconds=0.1, pending_seconds=0.1)
    try:
        async with serving(settings, SystemClock()) as emulator:  # the docker runtime keeps real time
            yield emulator
    finally:
        await remove_node_containers(engine["host"], node)


@pytest.fixture
async def client(docker_emulator: EciEmulator) -> AsyncIterator[EciClient]:
    client = eci_client(docker_emulator)
    try:
        yield client
    finally:
        await client.aclose()


async def running(client: EciClient, name: str, script: str) -> str:
    group_id = await client.create_container_group({
        "ContainerGroupName": name, "RestartPolicy": "Never",
        "Container": [{"Name": "main", "Image": tools_image(), "Command": ["sh", "-c", script]}]})

    async def is_running() -> bool:
        answer = await client.describe_container_groups(ids=[group_id])
        return bool(answer["ContainerGroups"]) and answer["ContainerGroups"][0]["Status"] == "Running"
    await eventually(is_running, timeout_seconds=60, what=f"group {name} to run")
    return group_id


async def test_follow_of_a_writing_container_loses_and_repeats_nothing(client: EciClient) -> None:
    # Ten lines a second for four seconds: several lines share each poll's first second, so windows overlap.
    group = await running(client, "writer", f"i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo line $i; "
                                            "sleep 0.1; done; sleep 600")
    reader = EciLogReader(client, SystemClock(), poll_seconds=0.3)
    received = bytearray()
    expected = b"".join(f"line {n}\n".encode() for n in range(1, LINES + 1))
    stream = cast(AsyncGenerator[bytes, None],
                  reader.read(group, "main", LogOptions(follow=True), still_running=lambda: True))
    async with asyncio.timeout(30), contextlib.aclosing(stream) as chunks:
        async for chunk in chunks:
            received.extend(chunk)
            if len(received) >= len(expected):
                break
    assert bytes(received) == expected


async def test_exec_in_a_real_container(client: EciClient) -> None:
    group = await running(client, "shell", "sleep 600")
    bridge = EciExecBridge(client)
    try:
        io = stream_io()
        assert await bridge.exec(group, "main", ["sh", "-c", "echo out; echo err >&2; exit 5"], io) == 5
        assert (sink(io.stdout).data, sink(io.stderr).data) == (b"out\n", b"err\n")
        io = stream_io(MemorySource(b"through docker\n", eof=True))
        assert await bridge.exec(group, "main", ["cat"], io) == 0
        assert sink(io.stdout).data == b"through docker\n"
        # The engine starts the command before it applies a size; input follows the first size, so reading a line
        # first makes stty ask after the resize, as an interactive shell does.
        io = stream_io(MemorySource(b"go\n"), tty=True)
        io.resizes.put(TerminalSize(width=88, height=22))
        assert await bridge.exec(group, "main", ["sh", "-c", "read line; stty size"], io) == 0
        assert sink(io.stdout).data.splitlines()[-1].strip() == b"22 88", sink(io.stdout).data
    finally:
        await bridge.aclose()
