"""vnode restarting while pods exist: adopt what runs, delete orphans, never silently recreate a lost pod."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from tests.support.agent import agent_settings, running_agent
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.providers.base import PodRef
from vnode.providers.mock import MockProvider

NS = "default"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "nodeName": "vnode", "containers": [{"name": "main", "image": "busybox:1.36"}], **spec}}


async def wait_phase(core: client.CoreV1Api, name: str, phase: str) -> Any:
    async def probe() -> Any:
        current = await core.read_namespaced_pod(name, NS)
        return current if current.status.phase == phase else None

    return await eventually(probe, what=f"{name} {phase}")


def shared_mock(sandbox: RunningSandbox) -> MockProvider:
    """One backend that outlives successive vnode processes, as a real backend does."""
    return MockProvider(agent_settings(sandbox).provider, SystemClock())  # type: ignore[arg-type]


async def test_running_pod_is_adopted_not_recreated(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """After a restart a pod the backend still runs is adopted: no second create, status keeps flowing."""
    backend = shared_mock(sandbox)
    async with running_agent(sandbox, mock_provider=backend):
        await core.create_namespaced_pod(NS, pod("build-1"))
        await wait_phase(core, "build-1", "Running")
    creates_before = backend.calls.count(("create_pod", "default/build-1"))
    async with running_agent(sandbox, mock_provider=backend):
        await core.patch_namespaced_pod("build-1", NS, {"spec": {"containers": [
            {"name": "main", "image": "busybox:1.37"}]}})

        async def updated() -> bool:
            status = (await core.read_namespaced_pod("build-1", NS)).status.container_statuses[0]
            return bool(status.image == "busybox:1.37")

        await eventually(updated, what="status from the adopted pod")
    assert backend.calls.count(("create_pod", "default/build-1")) == creates_before == 1


async def test_orphaned_backend_pod_is_deleted_at_start(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A backend pod whose API pod was deleted while vnode was down is removed when vnode starts."""
    backend = shared_mock(sandbox)
    async with running_agent(sandbox, mock_provider=backend):
        created = await core.create_namespaced_pod(NS, pod("build-1"))
        await wait_phase(core, "build-1", "Running")
    await core.delete_namespaced_pod("build-1", NS, grace_period_seconds=0)
    assert backend.resolved(created.metadata.uid) is not None
    async with running_agent(sandbox, mock_provider=backend):
        assert backend.resolved(created.metadata.uid) is None
        assert ("delete_pod", "default/build-1") in backend.calls


async def test_lost_never_pod_fails_with_a_reason(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A restartPolicy Never pod the backend lost while vnode was down is Failed, not run again."""
    backend = shared_mock(sandbox)
    async with running_agent(sandbox, mock_provider=backend):
        created = await core.create_namespaced_pod(NS, pod("build-1", restartPolicy="Never"))
        await wait_phase(core, "build-1", "Running")
    await backend.delete_pod(PodRef(NS, "build-1", created.metadata.uid), 0)  # the backend loses it
    async with running_agent(sandbox, mock_provider=backend):
        failed = await wait_phase(core, "build-1", "Failed")
        assert failed.status.reason == "ProviderLost"
    assert backend.calls.count(("create_pod", "default/build-1")) == 1


async def test_lost_always_pod_is_recreated_with_an_event(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A restartPolicy Always pod the backend lost is started again, and an Event says so."""
    backend = shared_mock(sandbox)
    async with running_agent(sandbox, mock_provider=backend):
        created = await core.create_namespaced_pod(NS, pod("build-1"))
        await wait_phase(core, "build-1", "Running")
    await backend.delete_pod(PodRef(NS, "build-1", created.metadata.uid), 0)
    async with running_agent(sandbox, mock_provider=backend):
        async def recreated() -> bool:
            return backend.resolved(created.metadata.uid) is not None

        await eventually(recreated, what="the pod to run again")
        events = await core.list_namespaced_event(NS, field_selector="involvedObject.name=build-1")
        assert "Recreated" in {e.reason for e in events.items}


async def test_pod_never_started_is_created_after_restart(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A pod bound while vnode was down is simply created when vnode starts."""
    await core.create_namespaced_pod(NS, pod("late"))
    async with running_agent(sandbox):
        await wait_phase(core, "late", "Running")


async def test_repeated_events_are_aggregated(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """The same warning again bumps the Event's count instead of adding Events."""
    async with running_agent(sandbox, provider={"kind": "mock", "transient_create_failures": 3}):
        await core.create_namespaced_pod(NS, pod("build-1"))
        await wait_phase(core, "build-1", "Running")

        async def counted() -> Any:
            events = await core.list_namespaced_event(NS, field_selector="involvedObject.name=build-1")
            failures = [e for e in events.items if e.reason == "ProviderCreateFailed"]
            return failures if failures and failures[0].count == 3 else None

        failures = await eventually(counted, what="an aggregated Event with count 3")
        assert len(failures) == 1
