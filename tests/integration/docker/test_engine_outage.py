"""The Docker engine going away makes the node NotReady and loses no pod; when it is back, Ready returns and the pod
runs on in the same container. The outage is real: vnode reaches the engine through a socket relay the test cuts."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_world import docker_world, tools_image
from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.wait import eventually
from vnode.kube import paths


class SocketRelay:
    """A unix socket that relays to the engine's while it is up; `cut()` refuses and drops every connection."""

    def __init__(self, path: Path, engine: str) -> None:
        self.path = path
        self._engine = engine
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._relay, path=str(self.path))

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writers = [writer]
        self._writers.add(writer)
        try:
            engine_reader, engine_writer = await asyncio.open_unix_connection(self._engine)
            writers.append(engine_writer)
            self._writers.add(engine_writer)
            await asyncio.gather(_pump(reader, engine_writer), _pump(engine_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for each in writers:
                self._writers.discard(each)
                each.transport.abort()
            self._tasks.discard(task)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof():
        sink.write_eof()


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[SocketRelay]:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        pytest.skip(f"the outage relay needs a unix-socket engine, not {host!r}")
    running = SocketRelay(Path(f"/tmp/vnode-relay-{os.getpid()}.sock"), host.removeprefix("unix://"))
    await running.start()
    try:
        yield running
    finally:
        await running.cut()


@pytest.fixture
async def world(tmp_path: Path, relay: SocketRelay) -> AsyncIterator[KubeletWorld]:
    async with docker_world(tmp_path, "test-outage", host=f"unix://{relay.path}") as running:
        yield running


def ready_condition(node: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


async def test_engine_outage_makes_the_node_not_ready_and_keeps_pods(world: KubeletWorld, relay: SocketRelay) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "build"},
           "spec": {"nodeName": world.node, "terminationGracePeriodSeconds": 1, "containers": [
               {"name": "main", "image": tools_image(), "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}
    await world.agent.client.create(paths.pods_path("default"), pod)
    running = await world.wait_pod("build", lambda p: p.get("status", {}).get("phase") == "Running", "Running")
    container_id = running["status"]["containerStatuses"][0]["containerID"]

    async def node_ready(expected: str) -> dict[str, Any] | None:
        condition = ready_condition(await world.agent.client.get(paths.node_path(world.node)))
        return condition if condition["status"] == expected else None

    await relay.cut()
    down = await eventually(lambda: node_ready("False"), timeout_seconds=WAIT, what="the node to go NotReady")
    assert "docker backend unavailable" in down["message"]
    after = await world.agent.client.get(paths.pod_path("default", "build"))
    assert after["status"]["phase"] == "Running"  # nothing was failed or deleted while the engine was away
    assert "deletionTimestamp" not in after["metadata"]

    await relay.start()
    await eventually(lambda: node_ready("True"), timeout_seconds=WAIT, what="the node to be Ready again")
    back = await world.wait_pod("build", lambda p: p["status"]["phase"] == "Running", "Running")
    assert back["status"]["containerStatuses"][0]["containerID"] == container_id
