"""Pods on the Docker provider as kubectl users see them: phases and reasons, image pull failures, init containers,
logs, exec and port-forward, through the sandbox API server and vnode's kubelet API."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_world import docker_world, tools_image
from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.terminal import check_exec_it_terminal_size
from tests.support.wait import eventually
from vnode.kube import paths

pytestmark = pytest.mark.kubectl


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[KubeletWorld]:
    async with docker_world(tmp_path, "test-pods") as running:
        yield running


def container(name: str, *command: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": tools_image(), "imagePullPolicy": "Never", "command": list(command), **extra}


async def run_pod(world: KubeletWorld, name: str, containers: list[dict[str, Any]], *,
                  restart_policy: str = "Never", **spec: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
           "spec": {"nodeName": world.node, "restartPolicy": restart_policy, "containers": containers,
                    "terminationGracePeriodSeconds": 1, **spec}}
    await world.agent.client.create(paths.pods_path("default"), pod)


async def logs_of(world: KubeletWorld, name: str) -> str:
    """The log of a finished pod's container, once the engine has written all of it (its copy may trail the exit)."""
    async def complete() -> str | None:
        text = (await world.kubectl().run("logs", name)).stdout
        return text if text.endswith("\n") else None
    return await eventually(complete, timeout_seconds=WAIT, what=f"the log of {name}")


def phase_is(*phases: str) -> Any:
    return lambda pod: pod.get("status", {}).get("phase") in phases


def terminated(pod: dict[str, Any], name: str) -> dict[str, Any]:
    status = next(c for c in pod["status"]["containerStatuses"] if c["name"] == name)
    return dict(status["state"]["terminated"])


async def test_never_pods_end_succeeded_or_failed_with_reasons(world: KubeletWorld) -> None:
    await run_pod(world, "ok", [container("main", "sh", "-c", "echo done")])
    await run_pod(world, "bad", [container("main", "sh", "-c", "exit 3")])
    ok = await world.wait_pod("ok", phase_is("Succeeded"), "Succeeded")
    bad = await world.wait_pod("bad", phase_is("Failed"), "Failed")
    assert (terminated(ok, "main")["reason"], terminated(ok, "main")["exitCode"]) == ("Completed", 0)
    assert (terminated(bad, "main")["reason"], terminated(bad, "main")["exitCode"]) == ("Error", 3)
    assert terminated(bad, "main")["containerID"].startswith("docker://")


async def test_oom_killed_is_reported(world: KubeletWorld) -> None:
    # Fill memory past the limit: `tail` buffers a line that never ends.
    hog = container("main", "sh", "-c", "dd if=/dev/zero bs=1M count=256 | tail",
                    resources={"limits": {"memory": "32Mi"}})
    await run_pod(world, "hog", [hog])
    pod = await world.wait_pod("hog", phase_is("Failed"), "Failed")
    assert terminated(pod, "main")["reason"] == "OOMKilled"


async def test_missing_image_backs_off_with_events(world: KubeletWorld) -> None:
    image = "vnode-test/does-not-exist:1"
    await run_pod(world, "nopull", [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}])

    def backing_off(pod: dict[str, Any]) -> bool:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        waiting = statuses[0].get("state", {}).get("waiting", {}) if statuses else {}
        return waiting.get("reason") == "ImagePullBackOff"
    pod = await world.wait_pod("nopull", backing_off, "ImagePullBackOff")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == f'Back-off pulling image "{image}"'
    events = await world.kubectl().run("get", "events", "--field-selector", "involvedObject.name=nopull", "-o",
                                       "jsonpath={range .items[*]}{.reason}{'\\n'}{end}")
    assert {"Failed", "BackOff"} <= set(events.stdout.split()), events.stdout


async def test_init_containers_run_first_in_order(world: KubeletWorld) -> None:
    volume = [{"name": "work", "mountPath": "/work"}]
    await run_pod(world, "ordered", [container("main", "sh", "-c", "cat /work/order", volumeMounts=volume)],
                  initContainers=[container("first", "sh", "-c", "echo first >> /work/order", volumeMounts=volume),
                                  container("second", "sh", "-c", "echo second >> /work/order",
                                            volumeMounts=volume)],
                  volumes=[{"name": "work", "emptyDir": {}}])
    await world.wait_pod("ordered", phase_is("Succeeded"), "Succeeded")
    assert await logs_of(world, "ordered") == "first\nsecond\n"


async def test_logs_follow_exec_tty_and_port_forward(world: KubeletWorld) -> None:
    server = "while :; do echo tick; sleep 0.2; done & while :; do nc -l -p 8080 -e cat; done"
    await run_pod(world, "live", [container("main", "sh", "-c", server, ports=[{"containerPort": 8080}])],
                  restart_policy="Always")
    await world.wait_pod("live", phase_is("Running"), "Running")
    kubectl = world.kubectl()
    follower = await kubectl.start("logs", "-f", "live")
    try:
        assert follower.stdout is not None
        async with asyncio.timeout(WAIT):
            lines = [await follower.stdout.readline() for _ in range(3)]
        assert lines == [b"tick\n"] * 3
    finally:
        follower.terminate()
        await follower.wait()
    failed = await kubectl.run("exec", "live", "--", "sh", "-c", "exit 5", check=False)
    assert failed.returncode == 5
    forward = await kubectl.start_interactive("port-forward", "pod/live", ":8080")
    try:
        assert forward.stdout is not None
        async with asyncio.timeout(WAIT):
            line = (await forward.stdout.readline()).decode()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert match, line
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match.group(1)))
        writer.write(b"echo me\n")
        await writer.drain()
        async with asyncio.timeout(WAIT):
            assert await reader.readline() == b"echo me\n"
        writer.close()
        await writer.wait_closed()
    finally:
        forward.terminate()
        await forward.wait()


async def test_deleting_a_pod_removes_its_containers(world: KubeletWorld) -> None:
    await run_pod(world, "gone", [container("main", "sleep", "3600")])
    await world.wait_pod("gone", phase_is("Running"), "Running")
    await world.kubectl().run("delete", "pod", "gone", "--wait=true", timeout_seconds=WAIT)

    async def no_containers() -> bool:
        return not [p for p in await world.agent.provider.list_pods() if p.ref.name == "gone"]
    await eventually(no_containers, timeout_seconds=WAIT, what="the pod's containers to be removed")


async def test_exec_it_gets_a_terminal_of_the_clients_size(world: KubeletWorld) -> None:
    await run_pod(world, "term", [container("main", "sleep", "3600")], restart_policy="Always")
    await world.wait_pod("term", phase_is("Running"), "Running")
    await check_exec_it_terminal_size(world, "term")


async def test_spec_fields_reach_the_container(world: KubeletWorld) -> None:
    """securityContext, workingDir, env from a ConfigMap, Secret and ConfigMap files with their modes, subPath."""
    kubectl = world.kubectl()
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                "data": {"GREETING": "hello", "app.conf": "debug=1"}},
               {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"token": "s3cret"}}]
    for obj in objects:
        await kubectl.run("apply", "-f", "-", stdin=json.dumps(obj).encode())
    script = ("id -u; pwd; echo $GREETING; stat -c %a /secret/token; cat /secret/token; echo; cat /etc/app.conf; "
              "echo; touch /rootfs-write 2>/dev/null || echo read-only root")
    main = container("main", "sh", "-c", script, workingDir="/tmp",
                     securityContext={"runAsUser": 1000, "readOnlyRootFilesystem": True},
                     env=[{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings",
                                                                                 "key": "GREETING"}}}],
                     volumeMounts=[{"name": "secret", "mountPath": "/secret"},
                                   {"name": "config", "mountPath": "/etc/app.conf", "subPath": "app.conf"}])
    await run_pod(world, "spec", [main], volumes=[
        {"name": "secret", "secret": {"secretName": "token", "defaultMode": 0o400}},
        {"name": "config", "configMap": {"name": "settings"}}],
        securityContext={"fsGroup": 1000})
    await world.wait_pod("spec", phase_is("Succeeded"), "Succeeded")
    assert (await logs_of(world, "spec")).splitlines() == [
        # defaultMode 0400 plus fsGroup: the kubelet gives the file to the group and ORs in 0440.
        "1000", "/tmp", "hello", "440", "s3cret", "debug=1", "read-only root"]


async def test_on_failure_restarts_until_success(world: KubeletWorld) -> None:
    volume = [{"name": "work", "mountPath": "/work"}]
    flaky = container("main", "sh", "-c", "test -f /work/tried && exit 0; touch /work/tried; exit 1",
                      volumeMounts=volume)
    await run_pod(world, "flaky", [flaky], restart_policy="OnFailure", volumes=[{"name": "work", "emptyDir": {}}])
    pod = await world.wait_pod("flaky", phase_is("Succeeded"), "Succeeded")
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
