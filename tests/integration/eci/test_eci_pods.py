"""Pods on the eci provider as kubectl and Jenkins see them: the sandbox API server, vnode's kubelet API, the eci
provider and the real Aliyun SDK, against the ECI emulator running the groups' containers on the Docker engine."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_world import tools_image
from tests.support.eci_world import EciWorld, eci_world
from tests.support.jenkins import check_container_step
from tests.support.kubelet_world import WAIT
from tests.support.terminal import check_exec_it_terminal_size
from tests.support.wait import eventually
from vnode.kube import paths
from vnode.providers.eci.translate import TAG_UID

pytestmark = pytest.mark.kubectl


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[EciWorld]:
    async with eci_world(tmp_path, f"test-eci-pods-{secrets.token_hex(3)}") as running:
        yield running


def container(name: str, *command: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": tools_image(), "imagePullPolicy": "Never", "command": list(command), **extra}


async def run_pod(world: EciWorld, name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": world.node, "restartPolicy": "Always", "containers": containers,
                    "terminationGracePeriodSeconds": 1, **spec}}
    await world.agent.client.create(paths.pods_path("default"), pod)
    return await world.wait_pod(name, lambda p: p.get("status", {}).get("phase") == "Running", "Running")


def groups_of(world: EciWorld, uid: str) -> list[Any]:
    """The emulator's groups created for the pod with this UID."""
    return [g for g in world.eci.store.select() if (TAG_UID, uid) in g.tags]


async def test_jenkins_container_step_goes_through_the_eci_exec_bridge(world: EciWorld) -> None:
    await check_container_step(world)
    assert world.eci.calls("ExecContainerCommand"), "the step did not go through ECI's exec API"


async def test_logs_follow_streams_new_lines(world: EciWorld) -> None:
    await run_pod(world, "ticker", [container("main", "sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; "
                                              "sleep 0.2; done")])
    follower = await world.kubectl().start("logs", "-f", "ticker")
    try:
        assert follower.stdout is not None
        async with asyncio.timeout(WAIT):
            lines = [(await follower.stdout.readline()).decode() for _ in range(8)]
    finally:
        follower.terminate()
        await follower.wait()
    # Polled through DescribeContainerLog, yet in order with nothing lost or repeated.
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 8)), lines


async def test_exec_it_gets_a_terminal_of_the_clients_size(world: EciWorld) -> None:
    await run_pod(world, "term", [container("main", "sleep", "3600")])
    await check_exec_it_terminal_size(world, "term")


async def test_deleting_a_pod_deletes_its_group(world: EciWorld) -> None:
    pod = await run_pod(world, "gone", [container("main", "sleep", "3600")])
    uid = pod["metadata"]["uid"]
    assert len(groups_of(world, uid)) == 1
    await world.kubectl().run("delete", "pod", "gone", "--wait=true", timeout_seconds=WAIT)

    async def group_gone() -> bool:
        return not groups_of(world, uid)
    await eventually(group_gone, timeout_seconds=WAIT, what="the pod's container group to be deleted")


async def test_kaniko_pod_gets_its_registry_credentials_from_a_projected_secret(world: EciWorld) -> None:
    config = json.dumps({"auths": {"registry.example.com": {"auth": base64.b64encode(b"ci:s3cret").decode()}}})
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred", "namespace": "default"},
              "type": "kubernetes.io/dockerconfigjson",
              "data": {".dockerconfigjson": base64.b64encode(config.encode()).decode()}}
    await world.agent.client.create("/api/v1/namespaces/default/secrets", secret)
    volume = {"name": "jenkins-docker-cfg", "projected": {"sources": [{"secret": {
        "name": "regcred", "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}}]}}
    kaniko = container("kaniko", "cat", tty=True, stdin=True,
                       volumeMounts=[{"name": "jenkins-docker-cfg", "mountPath": "/kaniko/.docker"},
                                     {"name": "workspace-volume", "mountPath": "/home/jenkins/agent"}])
    await run_pod(world, "kaniko", [kaniko], restartPolicy="Never",
                  volumes=[volume, {"name": "workspace-volume", "emptyDir": {}}])
    shown = await world.kubectl().run("exec", "kaniko", "-c", "kaniko", "--", "cat", "/kaniko/.docker/config.json")
    assert json.loads(shown.stdout) == json.loads(config)
    created = world.eci.calls("CreateContainerGroup")[-1].params
    assert "ConfigFileVolume" in created.values(), "the projected secret did not travel as a ConfigFileVolume"
