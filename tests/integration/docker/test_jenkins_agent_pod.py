"""A Jenkins-shaped agent pod on the Docker provider, through the sandbox API server and vnode's kubelet API, driven
as the kubernetes-plugin drives a `container('build') { sh ... }` step (jenkins-plugin.md section 3)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_world import docker_world
from tests.support.jenkins import check_container_step, create_agent_pod
from tests.support.kubelet_world import WAIT, KubeletWorld

pytestmark = pytest.mark.kubectl


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[KubeletWorld]:
    async with docker_world(tmp_path, "test-jenkins") as running:
        yield running


async def test_container_step_runs_in_the_shared_workspace(world: KubeletWorld) -> None:
    await check_container_step(world)


async def test_running_arrives_with_every_container_and_ready(world: KubeletWorld) -> None:
    """The first status that says Running also has every container running and the pod Ready."""
    seen: list[dict[str, Any]] = []
    watch = world.kubectl().start("get", "pods", "--watch", "-o", "json", "--output-watch-events")
    process = await watch
    try:
        pod = await create_agent_pod(world)
        assert pod
        assert process.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        async with asyncio.timeout(WAIT):
            while not any(e["object"].get("status", {}).get("phase") == "Running" for e in seen):
                chunk = await process.stdout.read(65536)
                assert chunk, "kubectl get -w ended"
                buffer += chunk.decode()
                while buffer.strip():
                    try:
                        event, end = decoder.raw_decode(buffer.lstrip())
                    except ValueError:
                        break
                    seen.append(event)
                    buffer = buffer.lstrip()[end:]
    finally:
        process.terminate()
        await process.wait()
    first_running = next(e["object"] for e in seen if e["object"].get("status", {}).get("phase") == "Running")
    states = [c["state"] for c in first_running["status"]["containerStatuses"]]
    assert all("running" in s for s in states), states
    ready = {c["type"]: c["status"] for c in first_running["status"]["conditions"]}
    assert ready["Ready"] == "True"
