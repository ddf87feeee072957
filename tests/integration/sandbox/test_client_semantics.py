"""kube-apiserver semantics the node agent relies on, exercised with kubernetes_asyncio against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.sandbox import running_sandbox
from tests.support.wait import eventually

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "build-1", "labels": {"app": "ci"}},
    "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]},
}


def ready_node(name: str = "node-a") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
        ], "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}},
    }


async def test_watch_resumes_after_a_resource_version(api: client.ApiClient) -> None:
    """A watch started at resourceVersion N delivers only what changed after N."""
    core = client.CoreV1Api(api)
    # Bound at creation, so the scheduler writes nothing between the two writes under test.
    created = await core.create_namespaced_pod("default", {**POD, "spec": {**POD["spec"], "nodeName": "node-a"}})
    start_rv = created.metadata.resource_version
    await core.patch_namespaced_pod("build-1", "default", {"metadata": {"labels": {"step": "2"}}})
    events = []
    async with watch.Watch().stream(core.list_namespaced_pod, "default", resource_version=start_rv,
                                    timeout_seconds=2) as stream:
        async for event in stream:
            events.append((event["type"], event["object"].metadata.labels.get("step")))
            break
    assert events == [("MODIFIED", "2")]


async def test_too_old_resource_version_gets_410_and_a_relist_recovers(tmp_path: Path) -> None:
    """Once history has moved past N, watching from N fails with 410 Gone; a fresh list then works."""
    from kubernetes_asyncio import config

    async with running_sandbox(tmp_path / "s", watch_history=100) as sandbox:
        configuration = client.Configuration()
        await config.load_kube_config(config_file=str(sandbox.kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration=configuration) as api:
            core = client.CoreV1Api(api)
            first = await core.create_namespaced_config_map(
                "default", {"metadata": {"name": "cm"}, "data": {"n": "0"}})
            for n in range(1, 130):
                await core.patch_namespaced_config_map("cm", "default", {"data": {"n": str(n)}})
            with pytest.raises(ApiException) as caught:
                async with watch.Watch().stream(core.list_namespaced_config_map, "default",
                                                resource_version=first.metadata.resource_version,
                                                timeout_seconds=2) as stream:
                    async for _ in stream:
                        pass
            assert caught.value.status == 410
            relisted = await core.list_namespaced_config_map("default")
            assert [cm.data["n"] for cm in relisted.items if cm.metadata.name == "cm"] == ["129"]


async def test_update_with_stale_resource_version_conflicts(api: client.ApiClient) -> None:
    """A PUT carrying an old resourceVersion is refused with 409 Conflict."""
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_pod("default", POD)
    await core.patch_namespaced_pod("build-1", "default", {"metadata": {"labels": {"step": "2"}}})
    created.metadata.labels["step"] = "stale"
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_pod("build-1", "default", created)
    assert caught.value.status == 409
    current = await core.read_namespaced_pod("build-1", "default")
    assert current.metadata.labels["step"] == "2"


async def test_strategic_merge_patch_merges_node_conditions_by_type(api: client.ApiClient) -> None:
    """Patching one node condition keeps the others: conditions merge by their `type` key."""
    core = client.CoreV1Api(api)
    await core.create_node(ready_node())
    await core.patch_node_status("node-a", {"status": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "BackendDown"}]}})
    node = await core.read_node("node-a")
    conditions = {c.type: (c.status, c.reason) for c in node.status.conditions}
    assert conditions == {"Ready": ("False", "BackendDown"),
                          "MemoryPressure": ("False", "KubeletHasSufficientMemory")}


async def test_status_subresource_writes_only_status(api: client.ApiClient) -> None:
    """A status write cannot change labels or spec, and a main-resource write cannot change status."""
    core = client.CoreV1Api(api)
    await core.create_namespaced_pod("default", POD)
    await core.patch_namespaced_pod_status("build-1", "default", {
        "metadata": {"labels": {"sneaky": "yes"}}, "status": {"phase": "Running"}})
    await core.patch_namespaced_pod("build-1", "default", {"status": {"phase": "Failed"}})
    pod = await core.read_namespaced_pod("build-1", "default")
    assert pod.status.phase == "Running"
    assert "sneaky" not in pod.metadata.labels


async def test_delete_with_a_wrong_uid_precondition_is_refused(api: client.ApiClient) -> None:
    """DELETE with a UID precondition removes only that incarnation of the object."""
    core = client.CoreV1Api(api)
    created = await core.create_namespaced_pod("default", POD)
    with pytest.raises(ApiException) as caught:
        await core.delete_namespaced_pod("build-1", "default", body=client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert caught.value.status == 409
    await core.delete_namespaced_pod("build-1", "default", body=client.V1DeleteOptions(
        grace_period_seconds=0, preconditions=client.V1Preconditions(uid=created.metadata.uid)))
    remaining = await core.list_namespaced_pod("default")
    assert remaining.items == []


async def test_bound_pod_is_deleted_gracefully(api: client.ApiClient) -> None:
    """Deleting a pod bound to a node marks it terminating; the kubelet's grace-0 delete removes it."""
    core = client.CoreV1Api(api)
    spec = {**POD, "spec": {**POD["spec"], "nodeName": "node-a"}}
    created = await core.create_namespaced_pod("default", spec)
    await core.delete_namespaced_pod("build-1", "default")
    terminating = await core.read_namespaced_pod("build-1", "default")
    assert terminating.metadata.deletion_timestamp is not None
    assert terminating.metadata.deletion_grace_period_seconds == 30
    await core.delete_namespaced_pod("build-1", "default", body=client.V1DeleteOptions(
        grace_period_seconds=0, preconditions=client.V1Preconditions(uid=created.metadata.uid)))
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_pod("build-1", "default")
    assert caught.value.status == 404


async def test_finalizers_hold_deletion_until_removed(api: client.ApiClient) -> None:
    """An object with finalizers stays, terminating, until the last finalizer is removed."""
    core = client.CoreV1Api(api)
    await core.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["vnode.io/x"]}})
    await core.delete_namespaced_config_map("held", "default")
    held = await core.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp is not None
    await core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as caught:
        await core.read_namespaced_config_map("held", "default")
    assert caught.value.status == 404


async def test_generate_name_makes_unique_names(api: client.ApiClient) -> None:
    """`generateName` gets a random suffix per object."""
    core = client.CoreV1Api(api)
    body = {"metadata": {"generateName": "jenkins-agent-"}, "spec": POD["spec"]}
    first = await core.create_namespaced_pod("default", body)
    second = await core.create_namespaced_pod("default", body)
    assert first.metadata.name.startswith("jenkins-agent-")
    assert first.metadata.name != second.metadata.name


async def test_scheduler_binds_to_a_matching_tolerated_node(api: client.ApiClient) -> None:
    """Pending pods are bound to a Ready node whose taints they tolerate and whose labels they select."""
    core = client.CoreV1Api(api)
    node = ready_node("virtual")
    node["metadata"]["labels"] = {"type": "virtual-kubelet"}
    node["spec"] = {"taints": [{"key": "virtual-kubelet.io/provider", "value": "mock", "effect": "NoSchedule"}]}
    await core.create_node(node)
    await core.create_node(ready_node("plain"))
    pod = {**POD, "spec": {**POD["spec"], "nodeSelector": {"type": "virtual-kubelet"}, "tolerations": [
        {"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}]}}
    await core.create_namespaced_pod("default", pod)
    untolerating = {**POD, "metadata": {"name": "picky"}, "spec": {**POD["spec"], "nodeSelector": {
        "type": "virtual-kubelet"}}}
    await core.create_namespaced_pod("default", untolerating)
    async def settled() -> tuple[Any, Any] | None:
        bound = await core.read_namespaced_pod("build-1", "default")
        picky = await core.read_namespaced_pod("picky", "default")
        if bound.spec.node_name and any(c.type == "PodScheduled" for c in picky.status.conditions or []):
            return bound, picky
        return None

    bound, picky = await eventually(settled, what="scheduling decisions")
    scheduled = [c for c in picky.status.conditions if c.type == "PodScheduled"]
    assert bound.spec.node_name == "virtual"
    assert picky.spec.node_name is None
    assert scheduled[0].reason == "Unschedulable"
