"""Probes of Docker pods against a real engine, through DockerProvider directly (no Kubernetes): exec probes run in
the container, tcpSocket and httpGet ones connect inside the pod's network namespace; what is checked is the status
updates and Events the provider pushes, and the engine's containers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker_world import tools_image
from tests.support.provider_world import WAIT_SECONDS, ProviderWorld, provider_world
from tests.support.running import stopped
from tests.support.wait import eventually
from vnode.providers.base import ContainerStatus, PodRef, PodStatusUpdate, ResolvedPod
from vnode.providers.docker import naming

HTTPD = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[ProviderWorld]:
    async with provider_world(tmp_path) as running:
        yield running


async def until_main(world: ProviderWorld, ref: PodRef, check: Callable[[ContainerStatus], bool],
                     what: str) -> ContainerStatus:
    """The pod's `main` container status, once `check` holds for it."""
    def main(update: PodStatusUpdate) -> ContainerStatus | None:
        return next((c for c in update.containers if c.name == "main"), None)
    update = await world.until(ref, lambda u: (c := main(u)) is not None and check(c), what)
    found = main(update)
    assert found is not None
    return found


async def exec_in_main(world: ProviderWorld, ref: PodRef, command: list[str]) -> None:
    """Run `command` in the pod's main container to its end (through the engine, not the provider)."""
    summaries = await world.docker.containers.list(filters=naming.pod_filter(world.node, ref.uid))
    (target,) = [s for s in summaries if s["Labels"][naming.LABEL_CONTAINER] == "main"]
    execution = await target.exec(command)
    async with execution.start(detach=False) as stream:
        while await stream.read_out() is not None:
            pass


def _pod(script: str, **probes: Mapping[str, Any]) -> ResolvedPod:
    ref = PodRef("default", f"probed-{uuid.uuid4().hex[:6]}", str(uuid.uuid4()))
    container = {"name": "main", "image": tools_image(), "command": ["sh", "-c", script],
                 "ports": [{"name": "web", "containerPort": 8080}], **probes}
    # sh as PID 1 ignores SIGTERM: a 1 s grace period keeps a liveness kill short.
    spec = {"containers": [container], "restartPolicy": "Always", "terminationGracePeriodSeconds": 1}
    return ResolvedPod(ref, {"metadata": {"namespace": ref.namespace, "name": ref.name, "uid": ref.uid},
                             "spec": spec})


def _every_second(handler: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {**handler, "periodSeconds": 1, **extra}


async def test_an_exec_readiness_probe_keeps_the_container_unready_until_it_passes(world: ProviderWorld) -> None:
    pod = _pod("exec sleep 100000", readinessProbe=_every_second({"exec": {"command": ["test", "-f", "/tmp/ready"]}}))
    await world.provider.create_pod(pod)
    await until_main(world, pod.ref, lambda c: c.state.kind == "running", "main running")
    await eventually(lambda: _async(("Warning", "Unhealthy", "Readiness probe failed: ") in world.events(pod.ref)),
                     timeout_seconds=WAIT_SECONDS, what="a failed readiness probe")
    unready = await until_main(world, pod.ref, lambda c: c.state.kind == "running", "main still running")
    assert unready.ready is False
    await exec_in_main(world, pod.ref, ["touch", "/tmp/ready"])
    ready = await until_main(world, pod.ref, lambda c: c.ready, "main ready once /tmp/ready exists")
    assert (ready.state.kind, ready.restart_count) == ("running", 0)


async def test_an_adopted_pod_keeps_its_readiness_probe(world: ProviderWorld) -> None:
    pod = _pod("exec sleep 100000", readinessProbe=_every_second({"exec": {"command": ["test", "-f", "/tmp/ready"]}}))
    await world.provider.create_pod(pod)
    before = await until_main(world, pod.ref, lambda c: c.state.kind == "running", "main running")
    adopted = world.restarted()
    try:
        unready = await until_main(adopted, pod.ref, lambda c: c.state.kind == "running", "the adopted pod's status")
        assert (unready.ready, unready.container_id) == (False, before.container_id)
        await eventually(lambda: _async(("Warning", "Unhealthy", "Readiness probe failed: ")
                                        in adopted.events(pod.ref)),
                         timeout_seconds=WAIT_SECONDS, what="the adopted pod's readiness probe to fail")
        assert not any(u.containers[0].ready for u in adopted.updates if u.ref.uid == pod.ref.uid)
        await exec_in_main(world, pod.ref, ["touch", "/tmp/ready"])
        ready = await until_main(adopted, pod.ref, lambda c: c.ready, "the adopted main ready once /tmp/ready exists")
        assert (ready.container_id, ready.restart_count) == (before.container_id, 0)
    finally:
        await stopped(adopted.task)


async def test_a_failing_liveness_probe_kills_and_restarts_the_container(world: ProviderWorld) -> None:
    pod = _pod("exec sleep 100000", livenessProbe=_every_second({"exec": {"command": ["test", "-f", "/tmp/alive"]}},
                                                                 failureThreshold=2))
    await world.provider.create_pod(pod)
    restarted = await until_main(world, pod.ref, lambda c: c.restart_count >= 1, "a restart after the liveness failure")
    assert restarted.last_state is not None and restarted.last_state.kind == "terminated"
    events = world.events(pod.ref)
    assert ("Warning", "Unhealthy", "Liveness probe failed: ") in events
    assert ("Normal", "Killing", "Container main failed liveness probe, will be restarted") in events


async def test_a_tcp_socket_readiness_probe_on_a_named_port_becomes_ready(world: ProviderWorld) -> None:
    pod = _pod("exec nc -ll -p 8080 -e true", readinessProbe=_every_second({"tcpSocket": {"port": "web"}}))
    await world.provider.create_pod(pod)
    ready = await until_main(world, pod.ref, lambda c: c.ready, "main ready once its port accepts connections")
    assert ready.state.kind == "running"


async def test_a_tcp_socket_probe_of_a_closed_port_fails_as_connection_refused(world: ProviderWorld) -> None:
    pod = _pod("exec sleep 100000", readinessProbe=_every_second({"tcpSocket": {"port": 8081}}))
    await world.provider.create_pod(pod)
    await eventually(lambda: _async(any(e[1] == "Unhealthy" for e in world.events(pod.ref))),
                     timeout_seconds=WAIT_SECONDS, what="a failed tcpSocket probe")
    messages = {e[2] for e in world.events(pod.ref) if e[1] == "Unhealthy"}
    assert messages == {"Readiness probe failed: dial tcp 127.0.0.1:8081: connect: connection refused"}


async def test_an_http_get_probe_of_a_served_path_becomes_ready(world: ProviderWorld) -> None:
    pod = _pod(HTTPD, readinessProbe=_every_second({"httpGet": {"path": "/index.html", "port": 8080,
                                                                "httpHeaders": [{"name": "X-Probe", "value": "1"}]}}))
    await world.provider.create_pod(pod)
    ready = await until_main(world, pod.ref, lambda c: c.ready, "main ready once httpd serves /index.html")
    assert ready.state.kind == "running"


async def test_an_http_get_probe_of_a_missing_path_fails_with_404_and_stays_unready(world: ProviderWorld) -> None:
    pod = _pod(HTTPD, readinessProbe=_every_second({"httpGet": {"path": "/missing", "port": 8080}}))
    await world.provider.create_pod(pod)
    failed = ("Warning", "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404")
    await eventually(lambda: _async(failed in world.events(pod.ref)), timeout_seconds=WAIT_SECONDS,
                     what="a 404 from the readiness probe")
    main = await until_main(world, pod.ref, lambda c: c.state.kind == "running", "main running")
    assert main.ready is False


async def _async(value: bool) -> bool:
    return value
