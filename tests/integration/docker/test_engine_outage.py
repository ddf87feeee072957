"""The Docker engine going away makes the node NotReady and loses no pod; when it is back, Ready returns and the pod
runs on in the same container. The outage is real: vnode reaches the engine through a socket relay the test cuts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_world import docker_world, tools_image
from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.relay import SocketRelay
from tests.support.wait import eventually
from vnode.kube import paths


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[SocketRelay]:
    host = os.environ.get("DOCKER_HOST", "")
    if not host.startswith("unix://"):
        pytest.skip(f"the outage relay needs a unix-socket engine, not {host!r}")
    running = SocketRelay.to_unix(Path(f"/tmp/vnode-relay-{os.getpid()}.sock"), host.removeprefix("unix://"))
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
