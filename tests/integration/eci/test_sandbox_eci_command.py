"""`vnode sandbox --provider eci` as a user runs it: the in-process ECI emulator runs pods on the Docker engine when
one answers and simulates them otherwise; a stop leaves no container behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.docker_world import docker_provider_settings, remove_node_containers, tools_image
from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.kubelet_world import WAIT
from tests.support.wait import eventually

pytestmark = pytest.mark.kubectl


@dataclass
class SandboxProcess:
    process: asyncio.subprocess.Process
    ready_line: str
    kubectl: Kubectl
    node: str


@contextlib.asynccontextmanager
async def eci_sandbox(tmp: Path, env: dict[str, str]) -> AsyncIterator[SandboxProcess]:
    node = f"test-sandbox-eci-{secrets.token_hex(3)}"
    log = (tmp / "sandbox.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "sandbox", "--provider", "eci", "--state-dir", str(tmp / "state"),
        "--api-port", "0", "--node-name", node, stdout=asyncio.subprocess.PIPE, stderr=log,
        env={**os.environ, "VNODE_NODE__INTERNAL_IP": "127.0.0.1", "VNODE_KUBELET__PORT": "0",
             "VNODE_PROVIDER__STATUS_POLL_SECONDS": "0.5", **env})
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), WAIT)).decode()
        assert line.startswith("vnode sandbox ready: kubeconfig="), (line, (tmp / "sandbox.log").read_text())
        kubeconfig = Path(line.split("kubeconfig=")[1].split()[0])
        yield SandboxProcess(process, line, Kubectl(kubectl_binary(), kubeconfig), node)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def run_pod(sandbox: SandboxProcess, image: str) -> str:
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello", "namespace": "default"},
                "spec": {"nodeName": sandbox.node, "restartPolicy": "Never", "containers": [{
                    "name": "main", "image": image, "imagePullPolicy": "Never",
                    "command": ["sh", "-c", "echo hello from eci; sleep 3600"]}]}}
    await sandbox.kubectl.run("create", "-f", "-", stdin=yaml.safe_dump(manifest).encode())

    async def running() -> str | None:
        result = await sandbox.kubectl.run("get", "pod", "hello", "-o", "jsonpath={.status.phase}")
        return result.stdout if result.stdout == "Running" else None
    return await eventually(running, timeout_seconds=WAIT, what="pod hello Running")


async def test_with_an_engine_the_emulator_runs_real_containers(tmp_path: Path) -> None:
    docker = docker_provider_settings(tmp_path)
    env = {"VNODE_ECI_EMULATOR__DOCKER__NETWORK": docker["network"],
           "VNODE_ECI_EMULATOR__DOCKER__PAUSE_IMAGE": docker["pause_image"],
           "VNODE_ECI_EMULATOR__DOCKER__VOLUMES_DIR": docker["volumes_dir"]}
    node = ""
    try:
        async with eci_sandbox(tmp_path, env) as sandbox:
            node = sandbox.node
            assert "runtime=docker" in sandbox.ready_line
            await run_pod(sandbox, tools_image())

            async def logged() -> str | None:
                text = (await sandbox.kubectl.run("logs", "hello", check=False)).stdout
                return text or None
            assert await eventually(logged, timeout_seconds=WAIT, what="the pod's log") == "hello from eci\n"
            sandbox.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(sandbox.process.wait(), 30) == 0
        # The emulator removed its containers on the way out: nothing for the cleanup below to find.
        assert await remove_node_containers(docker["host"], node) == 0
    finally:
        if node:
            await remove_node_containers(docker["host"], node)


async def test_without_an_engine_the_emulator_simulates(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    async with eci_sandbox(tmp_path, env) as sandbox:
        assert "runtime=sim" in sandbox.ready_line
        assert await run_pod(sandbox, "busybox:1.36") == "Running"
        sandbox.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(sandbox.process.wait(), 30) == 0
