"""DockerProvider against a real engine, driven directly (no Kubernetes): what crosses the boundary is checked in
the engine (containers, labels), on the host (volume directories) and in the status updates the provider pushes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiodocker
import pytest

from tests.support.docker_world import docker_provider_settings, tools_image
from tests.support.provider_world import WAIT_SECONDS, ProviderWorld, provider_world
from tests.support.running import stopped
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.config import DockerProviderSettings
from vnode.errors import BackendUnavailable
from vnode.providers.base import ContainerStatus, PodRef, PodStatusUpdate, ResolvedPod, ResolvedVolume
from vnode.providers.docker import naming
from vnode.providers.docker.provider import DockerProvider

MISSING_IMAGE = "localhost:1/vnode-test/missing:1"  # no registry listens there: the pull fails at once
MISSING_PAUSE_IMAGE = "localhost:1/vnode-test/missing-pause:1"


@pytest.fixture
async def network() -> AsyncIterator[str]:
    """A user-defined bridge network (works on an engine started with --bridge=none) so pods get an address."""
    name = f"vnode-test-{uuid.uuid4().hex[:8]}"
    async with aiodocker.Docker() as docker:
        created = await docker.networks.create({"Name": name, "Driver": "bridge"})
        try:
            yield name
        finally:
            await created.delete()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[ProviderWorld]:
    async with provider_world(tmp_path) as running:
        yield running


@pytest.fixture
async def networked(tmp_path: Path, network: str) -> AsyncIterator[ProviderWorld]:
    async with provider_world(tmp_path, network=network) as running:
        yield running


@pytest.fixture
async def pauseless(tmp_path: Path) -> AsyncIterator[ProviderWorld]:
    """A world whose pause image cannot be pulled: no pod gets a sandbox."""
    async with provider_world(tmp_path, pause_image=MISSING_PAUSE_IMAGE) as running:
        yield running


def _pod(name: str, containers: Sequence[Mapping[str, Any]], *, init: Sequence[Mapping[str, Any]] = (),
         restart: str = "Always", empty_dirs: Sequence[str] = ()) -> ResolvedPod:
    ref = PodRef("default", name, str(uuid.uuid4()))
    spec: dict[str, Any] = {"containers": list(containers), "restartPolicy": restart,
                            "volumes": [{"name": v, "emptyDir": {}} for v in empty_dirs]}
    if init:
        spec["initContainers"] = list(init)
    pod = {"metadata": {"namespace": ref.namespace, "name": ref.name, "uid": ref.uid}, "spec": spec}
    return ResolvedPod(ref, pod, volumes={v: ResolvedVolume(v, "emptyDir") for v in empty_dirs})


def _sh(name: str, script: str, *, mounts: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": tools_image(), "command": ["sh", "-c", script],
            "volumeMounts": [{"name": m, "mountPath": f"/{m}"} for m in mounts], **extra}


def _named(update: PodStatusUpdate, name: str) -> ContainerStatus:
    return next(c for c in (*update.containers, *update.init_containers) if c.name == name)


def _volume(world: ProviderWorld, pod: ResolvedPod, volume: str) -> Path:
    return world.settings.volumes_dir.absolute() / pod.ref.uid / volume


async def test_containers_share_an_empty_dir_and_localhost_and_the_pod_gets_an_ip(networked: ProviderWorld) -> None:
    pod = _pod("shared", [
        _sh("server", "echo hello > /work/shared.txt && exec httpd -f -p 8080 -h /work", mounts=["work"]),
        _sh("client", "until wget -q -O /work/fetched.txt http://127.0.0.1:8080/shared.txt; do sleep 0.1; done;"
            " exec sleep 100000", mounts=["work"])], empty_dirs=["work"])
    await networked.provider.create_pod(pod)
    running = await networked.until(pod.ref, lambda u: u.phase == "Running" and all(
        c.state.kind == "running" for c in u.containers), "both containers running")
    fetched = _volume(networked, pod, "work") / "fetched.txt"

    async def client_fetched() -> bool:
        return fetched.exists() and fetched.read_text() != ""
    await eventually(client_fetched, timeout_seconds=WAIT_SECONDS,
                     what="the client to fetch the server's file over localhost")
    assert fetched.read_text() == "hello\n"
    assert running.pod_ip
    engine_ids = {f"docker://{c.id}" for c in await networked.containers(pod.ref)}
    assert {c.container_id for c in running.containers} <= engine_ids


@pytest.mark.parametrize(("script", "phase", "reason", "code"), [
    ("exit 0", "Succeeded", "Completed", 0), ("exit 3", "Failed", "Error", 3)])
async def test_restart_never_pod_ends_with_the_containers_exit(world: ProviderWorld, script: str, phase: str,
                                                               reason: str, code: int) -> None:
    pod = _pod("once", [_sh("main", script)], restart="Never")
    await world.provider.create_pod(pod)
    done = await world.until(pod.ref, lambda u: u.phase in ("Succeeded", "Failed"), "a terminal phase")
    state = _named(done, "main").state
    assert (done.phase, state.kind, state.reason, state.exit_code) == (phase, "terminated", reason, code)
    assert state.finished_at is not None and state.started_at is not None


async def test_init_containers_run_in_order_before_app_containers(world: ProviderWorld) -> None:
    pod = _pod("init", [_sh("app", "echo app >> /work/order", mounts=["work"])], init=[
        _sh("first", "echo first >> /work/order", mounts=["work"]),
        _sh("second", "echo second >> /work/order", mounts=["work"])], restart="Never", empty_dirs=["work"])
    await world.provider.create_pod(pod)
    done = await world.until(pod.ref, lambda u: u.phase == "Succeeded", "the pod to succeed")
    assert (_volume(world, pod, "work") / "order").read_text() == "first\nsecond\napp\n"
    assert [c.state.reason for c in done.init_containers] == ["Completed", "Completed"]


async def test_a_bad_image_gives_err_image_pull_then_image_pull_back_off(world: ProviderWorld) -> None:
    pod = _pod("badimage", [{"name": "main", "image": MISSING_IMAGE, "imagePullPolicy": "IfNotPresent"}])
    await world.provider.create_pod(pod)
    backoff = await world.until(pod.ref, lambda u: _named(u, "main").state.reason == "ImagePullBackOff",
                                "ImagePullBackOff")
    reasons = [_named(u, "main").state.reason for u in world.updates if u.ref.uid == pod.ref.uid]
    assert reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff")
    assert _named(backoff, "main").state.message == f'Back-off pulling image "{MISSING_IMAGE}"'
    events = {(e.type, e.reason) for u in world.updates if u.ref.uid == pod.ref.uid for e in u.events}
    assert {("Warning", "Failed"), ("Normal", "BackOff")} <= events


def _sandbox_failed(update: PodStatusUpdate) -> bool:
    return any(e.reason == "FailedCreatePodSandBox" for e in update.events)


async def test_a_pause_image_that_cannot_be_pulled_keeps_containers_creating_with_a_sandbox_event(
        pauseless: ProviderWorld) -> None:
    pod = _pod("nosandbox", [_sh("main", "exec sleep 100000")])
    await pauseless.provider.create_pod(pod)
    failed = await pauseless.until(pod.ref, _sandbox_failed, "a FailedCreatePodSandBox event")
    state = _named(failed, "main").state
    assert (failed.phase, state.kind, state.reason) == ("Pending", "waiting", "ContainerCreating")
    (event,) = [e for e in failed.events if e.reason == "FailedCreatePodSandBox"]
    assert event.type == "Warning"
    assert event.message.startswith(f'Failed to create pod sandbox: failed to get sandbox image "{MISSING_PAUSE_IMAGE}"'
                                    f': failed to pull image "{MISSING_PAUSE_IMAGE}": ')
    await pauseless.until(pod.ref, lambda u: sum(map(_sandbox_failed, pauseless.updates)) >= 2, "a retry")
    assert await pauseless.containers(pod.ref) == []


async def test_a_pod_waiting_for_its_sandbox_is_deleted_cleanly(pauseless: ProviderWorld) -> None:
    pod = _pod("nosandbox", [_sh("main", "exec sleep 100000", mounts=["work"])], empty_dirs=["work"])
    await pauseless.provider.create_pod(pod)
    await pauseless.until(pod.ref, _sandbox_failed, "a FailedCreatePodSandBox event")
    await pauseless.provider.delete_pod(pod.ref, 1)
    final = await pauseless.until(pod.ref, lambda u: all(c.state.kind == "terminated" for c in u.containers),
                                  "main reported terminated")
    assert final.phase == "Failed"

    async def gone() -> bool:
        return not await pauseless.containers(pod.ref) and not _volume(pauseless, pod, "work").parent.exists()
    await eventually(gone, timeout_seconds=WAIT_SECONDS, what="the pod's volume dir removed, no container left")


async def test_a_crashing_container_restarts_with_backoff_and_keeps_one_previous_instance(world: ProviderWorld) -> None:
    pod = _pod("crash", [_sh("main", "exit 1")])
    await world.provider.create_pod(pod)
    await world.until(pod.ref, lambda u: _named(u, "main").restart_count >= 3, "three restarts")
    reasons = {_named(u, "main").state.reason for u in world.updates if u.ref.uid == pod.ref.uid}
    assert "CrashLoopBackOff" in reasons
    last = _named(world.latest(pod.ref) or pod_missing(), "main").last_state
    assert last is not None and (last.kind, last.reason, last.exit_code) == ("terminated", "Error", 1)
    apps = [c for c in await world.containers(pod.ref) if c["Labels"][naming.LABEL_ROLE] == "app"]
    assert len(apps) <= 2


async def test_delete_stops_and_removes_every_container_and_the_volume_dir(world: ProviderWorld) -> None:
    pod = _pod("doomed", [_sh("main", "exec sleep 100000", mounts=["work"])], empty_dirs=["work"])
    await world.provider.create_pod(pod)
    await world.until(pod.ref, lambda u: u.phase == "Running", "Running")
    await world.provider.delete_pod(pod.ref, 1)
    final = await world.until(pod.ref, lambda u: all(c.state.kind == "terminated" for c in u.containers),
                              "every container terminated")
    assert ("Normal", "Killing") in {(e.type, e.reason) for e in final.events}

    async def gone() -> bool:
        return not await world.containers(pod.ref) and not _volume(world, pod, "work").parent.exists()
    await eventually(gone, timeout_seconds=WAIT_SECONDS, what="containers and volume dir removed")


async def test_a_second_provider_adopts_the_running_pod_without_recreating_it(world: ProviderWorld) -> None:
    pod = _pod("adopted", [_sh("main", "exec sleep 100000")])
    await world.provider.create_pod(pod)
    running = await world.until(pod.ref, lambda u: u.phase == "Running", "Running")
    before = sorted(c.id for c in await world.containers(pod.ref))
    second = world.restarted()
    try:
        listed = {u.ref.uid: u for u in await second.provider.list_pods()}
        assert listed[pod.ref.uid].phase == "Running"
        assert _named(listed[pod.ref.uid], "main").container_id == _named(running, "main").container_id
        await second.provider.create_pod(pod)
        assert sorted(c.id for c in await world.containers(pod.ref)) == before
    finally:
        await stopped(second.task)


async def test_ping_fails_with_backend_unavailable_when_the_engine_is_unreachable(tmp_path: Path) -> None:
    settings = DockerProviderSettings(**docker_provider_settings(tmp_path, host=f"unix://{tmp_path}/no.sock"))
    provider = DockerProvider(settings, SystemClock(), node_name="nowhere")
    try:
        with pytest.raises(BackendUnavailable):
            await provider.ping()
    finally:
        await provider.close()


def pod_missing() -> PodStatusUpdate:
    raise AssertionError("no status was pushed for the pod")
