"""A sandbox with a virtual node on the Docker provider, for tests that drive real containers through kubectl.

vnode leaves pods running when it stops (it adopts them at its next start), so leaving the context removes what the
test's node still has in the engine, and the pod volume directories: the suite leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from tests.support.agent import running_agent
from tests.support.kubelet_world import KubeletWorld
from tests.support.sandbox import running_sandbox
from vnode.providers.docker import naming


def docker_provider_settings(tmp: Path, **overrides: Any) -> dict[str, Any]:
    """Provider settings for the test engine (tests/tools/docker-env.sh); fails under CI when there is none."""
    host = os.environ.get("DOCKER_HOST")
    if not host:
        reason = os.environ.get("VNODE_TEST_DOCKER_UNAVAILABLE", "DOCKER_HOST is not set")
        if os.environ.get("CI"):
            pytest.fail(f"no Docker engine for the Docker provider tests: {reason}")
        pytest.skip(reason)
    return {"kind": "docker", "host": host, "network": os.environ.get("VNODE_TEST_DOCKER_NETWORK", "none"),
            "pause_image": os.environ.get("VNODE_TEST_PAUSE_IMAGE", "vnode-test/pause:1"),
            "volumes_dir": str(tmp / "volumes"), "restart_backoff_seconds": 0.2,
            "image_pull_backoff_seconds": 0.2, **overrides}


def tools_image() -> str:
    return os.environ.get("VNODE_TEST_TOOLS_IMAGE", "vnode-test/tools:1")


async def remove_node_containers(host: str | None, node: str) -> int:
    """Force-remove every container of `node` (host None: DOCKER_HOST); returns how many there were."""
    async with aiodocker.Docker(url=host) as docker:
        containers = await docker.containers.list(all=True, filters=naming.node_filter(node))
        for container in containers:
            await container.delete(force=True)
        return len(containers)


@contextlib.asynccontextmanager
async def docker_world(tmp: Path, node: str, **provider: Any) -> AsyncIterator[KubeletWorld]:
    settings = docker_provider_settings(tmp, **provider)
    try:
        async with running_sandbox(tmp / "sandbox") as sandbox, running_agent(
                sandbox, node={"name": node}, provider=settings) as agent:
            yield KubeletWorld(sandbox, agent, tmp)
    finally:
        await remove_node_containers(settings["host"], node)
        shutil.rmtree(settings["volumes_dir"], ignore_errors=True)
