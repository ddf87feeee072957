"""A Jenkins kubernetes-plugin agent pod and its `container('build') { sh ... }` step as fabric8 drives it
(jenkins-plugin.md section 3), shared by every backend's tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.support.docker_world import tools_image
from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.wait import eventually

WORKSPACE = "/home/jenkins/agent"
EXEC = ("/api/v1/namespaces/default/pods/agent/exec?command=sh&container=build&stdin=true&stdout=true"
        "&stderr=true")


def agent_containers() -> list[dict[str, Any]]:
    mount = [{"name": "workspace-volume", "mountPath": WORKSPACE}]
    return [
        {"name": "jnlp", "image": tools_image(), "imagePullPolicy": "Never", "volumeMounts": mount,
         "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]},
        {"name": "build", "image": tools_image(), "imagePullPolicy": "Never", "volumeMounts": mount,
         "command": ["cat"], "tty": True, "stdin": True},
    ]


async def create_agent_pod(world: KubeletWorld) -> dict[str, Any]:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent", "namespace": "default"},
           "spec": {"nodeName": world.node, "restartPolicy": "Never", "containers": agent_containers(),
                    "volumes": [{"name": "workspace-volume", "emptyDir": {}}]}}
    await world.agent.client.create("/api/v1/namespaces/default/pods", pod)
    return await world.wait_pod("agent", lambda p: p.get("status", {}).get("phase") == "Running", "Running")


async def container_step(world: KubeletWorld, lines: list[str]) -> list[dict[str, Any]]:
    """One `sh` step as fabric8 sends it: WebSocket v4 GET, bare `sh`, commands on stdin, never half-closed."""
    statuses: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            world.sandbox.url + EXEC, protocols=("v4.channel.k8s.io",), ssl=world.admin_ssl()) as ws:
        for line in lines:
            await ws.send_bytes(b"\x00" + line.encode() + b"\n")
        async with asyncio.timeout(WAIT):
            async for message in ws:
                if message.data[0] == 3:
                    statuses.append(json.loads(message.data[1:]))
        assert ws.close_code == 1000
    return statuses


async def check_container_step(world: KubeletWorld) -> None:
    """A `container('build') { sh }` step: the durable-task wrapper outlives the exec session, and its result
    file, read from the jnlp container, holds the script's real exit code."""
    pod = await create_agent_pod(world)
    statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
    assert all("running" in s["state"] for s in statuses.values()), statuses
    # The wrapper runs the script after the exec session ended: it must outlive the session.
    script = "sleep 1; echo building $BUILD_NUMBER; exit 3"
    # As durable-task writes it: `\$?` so that the outer shell leaves the exit status to the inner one.
    wrapper = (f"(sh -xe -c '{script}' > jenkins-log.txt 2>&1; echo \\$? > jenkins-result.txt.tmp; "
               "mv jenkins-result.txt.tmp jenkins-result.txt)")
    statuses_seen = await container_step(world, [
        f'cd "{WORKSPACE}"', "export BUILD_NUMBER='42'",
        f'nohup sh -c "{wrapper}" >&- 2>&- &', "exit"])
    assert statuses_seen == [{"metadata": {}, "status": "Success"}]

    async def result_in_jnlp() -> str | None:
        result = await world.kubectl().run("exec", "agent", "-c", "jnlp", "--", "cat",
                                           f"{WORKSPACE}/jenkins-result.txt", check=False)
        return result.stdout if result.returncode == 0 else None
    assert await eventually(result_in_jnlp, timeout_seconds=WAIT, what="jenkins-result.txt") == "3\n"
    log = await world.kubectl().run("exec", "agent", "-c", "jnlp", "--", "cat", f"{WORKSPACE}/jenkins-log.txt")
    assert "building 42" in log.stdout
