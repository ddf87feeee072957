"""vnode killed with SIGKILL mid-build and started again: the running pod is adopted with the same containers and its
status keeps flowing; a pod deleted while vnode was down has its containers removed at start."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from tests.support.docker_world import docker_provider_settings, remove_node_containers, tools_image
from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox, running_sandbox
from tests.support.wait import eventually
from vnode.providers.docker import naming

NODE = "test-restart"
WAIT = 30.0


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "sandbox") as running:
        yield running


async def start_vnode(sandbox: RunningSandbox, provider: dict[str, Any]) -> asyncio.subprocess.Process:
    env = {**os.environ, "VNODE_NODE__INTERNAL_IP": "127.0.0.1", "VNODE_KUBELET__PORT": "0",
           "VNODE_KUBELET__CLIENT_CA_FILE": str(sandbox.state_dir / "pki" / "ca.crt"),
           # The test's own ledger, not the checkout's default one.
           "VNODE_COST__DB_PATH": str(sandbox.state_dir / "cost" / "ledger.sqlite3"),
           **{f"VNODE_PROVIDER__{key.upper()}": str(value) for key, value in provider.items()}}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "run", "--kubeconfig", str(sandbox.kubeconfig), "--node-name", NODE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env)


def pod(name: str) -> str:
    return f"""{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
  "spec": {{"nodeName": "{NODE}", "terminationGracePeriodSeconds": 1, "containers": [{{"name": "main",
    "image": "{tools_image()}", "imagePullPolicy": "Never", "command": ["sleep", "3600"]}}]}}}}"""


async def container_ids(kubectl: Kubectl, name: str) -> list[str]:
    result = await kubectl.run("get", "pod", name, "-o",
                               "jsonpath={.status.phase} {.status.containerStatuses[*].containerID}", check=False)
    phase, _, ids = result.stdout.partition(" ")
    return ids.split() if phase == "Running" else []


async def test_sigkill_then_restart_adopts_and_cleans_up(sandbox: RunningSandbox, tmp_path: Path) -> None:
    provider = docker_provider_settings(tmp_path)
    kubectl = Kubectl(kubectl_binary(), sandbox.kubeconfig)
    vnode = await start_vnode(sandbox, provider)
    try:
        for name in ("build", "doomed"):
            await kubectl.run("create", "-f", "-", stdin=pod(name).encode())
        before = await eventually(lambda: container_ids(kubectl, "build"), timeout_seconds=WAIT, what="build runs")
        await eventually(lambda: container_ids(kubectl, "doomed"), timeout_seconds=WAIT, what="doomed runs")
        doomed_uid = (await kubectl.run("get", "pod", "doomed", "-o", "jsonpath={.metadata.uid}")).stdout

        vnode.send_signal(signal.SIGKILL)
        await vnode.wait()
        await kubectl.run("delete", "pod", "doomed", "--grace-period=0", "--force")
        vnode = await start_vnode(sandbox, provider)

        async def doomed_removed() -> bool:
            async with aiodocker.Docker(url=provider["host"]) as docker:
                return not await docker.containers.list(all=True, filters=naming.pod_filter(NODE, doomed_uid))
        await eventually(doomed_removed, timeout_seconds=WAIT, what="the deleted pod's containers to be removed")

        async def adopted_and_serving() -> bool:
            result = await kubectl.run("exec", "build", "--", "echo", "alive", check=False)
            return result.stdout == "alive\n"
        await eventually(adopted_and_serving, timeout_seconds=WAIT, what="exec into the adopted pod")
        assert await container_ids(kubectl, "build") == before
    finally:
        if vnode.returncode is None:
            vnode.kill()
            await vnode.wait()
        await remove_node_containers(provider["host"], NODE)
