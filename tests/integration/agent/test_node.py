"""The virtual node as the cluster sees it: registration, adoption, heartbeats, Lease, and health gating."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client

from tests.support.agent import running_agent
from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.providers.mock import MockProvider


def conditions(node: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in node.status.conditions}


def taints(node: Any) -> set[tuple[str, str | None, str]]:
    return {(t.key, t.value, t.effect) for t in node.spec.taints or []}


async def test_node_registers_with_labels_taint_and_status(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """The Node carries vnode's labels, taint, capacity, addresses, kubelet endpoint and version, and is Ready."""
    async with running_agent(sandbox) as agent:
        node = await core.read_node("vnode")
        labels = node.metadata.labels
        assert {k: labels[k] for k in ("type", "kubernetes.io/role", "kubernetes.io/hostname", "kubernetes.io/os",
                                       "vnode.io/provider")} == {
            "type": "virtual-kubelet", "kubernetes.io/role": "agent", "kubernetes.io/hostname": "vnode",
            "kubernetes.io/os": "linux", "vnode.io/provider": "mock"}
        assert labels["kubernetes.io/arch"]
        assert taints(node) == {("virtual-kubelet.io/provider", "mock", "NoSchedule")}
        assert node.status.capacity == {"cpu": "1000", "memory": "4Ti", "pods": "5000"}
        assert node.status.allocatable == node.status.capacity
        assert {(a.type, a.address) for a in node.status.addresses} == {("InternalIP", "127.0.0.1"),
                                                                        ("Hostname", "vnode")}
        assert node.status.daemon_endpoints.kubelet_endpoint.port == agent.kubelet.port
        assert node.status.node_info.kubelet_version.startswith("v1.33.0-vnode-")
        assert set(conditions(node)) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure",
                                         "NetworkUnavailable"}

        async def ready() -> bool:
            return conditions(await core.read_node("vnode"))["Ready"] == ("True", "KubeletReady")

        await eventually(ready, what="Ready=True")
        out = (await Kubectl(kubectl_binary(), sandbox.kubeconfig).run("get", "nodes", "--no-headers")).stdout
        assert out.split()[:3] == ["vnode", "Ready", "agent"]


async def test_existing_node_is_adopted_not_recreated(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A Node that already exists keeps its UID, others' labels, taints and conditions."""
    existing = await core.create_node({"metadata": {"name": "vnode", "labels": {"team": "ci"}}, "spec": {
        "taints": [{"key": "maintenance", "effect": "PreferNoSchedule"}]}, "status": {"conditions": [
            {"type": "CustomHealthy", "status": "True", "reason": "ByOperator"}]}})
    async with running_agent(sandbox) as agent:
        await eventually(lambda: _written(agent), what="a status write")
        node = await core.read_node("vnode")
        assert node.metadata.uid == existing.metadata.uid
        assert node.metadata.labels["team"] == "ci" and node.metadata.labels["type"] == "virtual-kubelet"
        assert taints(node) == {("maintenance", None, "PreferNoSchedule"),
                                ("virtual-kubelet.io/provider", "mock", "NoSchedule")}
        assert conditions(node)["CustomHealthy"] == ("True", "ByOperator")


async def _written(agent: Any) -> bool:
    return bool(agent.node.status_written.is_set())


async def test_deleted_node_is_registered_again(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """If someone deletes the Node while vnode runs, vnode creates it again."""
    async with running_agent(sandbox):
        first = await core.read_node("vnode")
        await core.delete_node("vnode")

        async def recreated() -> Any:
            nodes = await core.list_node(field_selector="metadata.name=vnode")
            return nodes.items and nodes.items[0].metadata.uid != first.metadata.uid

        await eventually(recreated, what="the node to come back")


async def test_lease_is_renewed_and_owned_by_the_node(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """kube-node-lease/<node> has a 40 s duration, the node as holder and owner, and its renewTime advances."""
    coordination = client.CoordinationV1Api(core.api_client)
    async with running_agent(sandbox):
        node = await core.read_node("vnode")

        async def lease() -> Any:
            try:
                return await coordination.read_namespaced_lease("vnode", "kube-node-lease")
            except client.exceptions.ApiException:
                return None

        first = await eventually(lease, what="the Lease")
        assert first.spec.holder_identity == "vnode"
        assert first.spec.lease_duration_seconds == 40
        assert [(o.kind, o.name, o.uid) for o in first.metadata.owner_references] == [
            ("Node", "vnode", node.metadata.uid)]

        async def renewed() -> bool:
            current = await coordination.read_namespaced_lease("vnode", "kube-node-lease")
            return bool(current.spec.renew_time > first.spec.renew_time)

        await eventually(renewed, what="a renewal")


async def test_backend_outage_makes_the_node_unreachable_and_keeps_pods(
        sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """Backend down: Ready=False naming the error, then Unknown + unreachable taint; pods stay; recovery undoes it."""
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {
            "nodeName": "vnode", "containers": [{"name": "c", "image": "busybox:1.36"}]}})

        async def running() -> bool:
            return str((await core.read_namespaced_pod("p", "default")).status.phase) == "Running"

        await eventually(running, what="pod Running")
        provider = agent.provider
        assert isinstance(provider, MockProvider)
        provider.set_healthy(False)

        async def not_ready() -> Any:
            node = await core.read_node("vnode")
            return node if conditions(node)["Ready"][0] == "False" else None

        node = await eventually(not_ready, what="Ready=False")
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.reason == "ProviderUnavailable" and "switched off" in ready.message

        async def unreachable() -> Any:
            node = await core.read_node("vnode")
            return node if ("node.kubernetes.io/unreachable", None, "NoSchedule") in taints(node) else None

        node = await eventually(unreachable, timeout_seconds=15, what="unreachable taint")
        assert conditions(node)["Ready"][0] == "Unknown"
        stale = await core.read_namespaced_pod("p", "default")
        assert stale.metadata.deletion_timestamp is None
        assert [c.status for c in stale.status.conditions if c.type == "Ready"] == ["False"]

        provider.set_healthy(True)

        async def recovered() -> bool:
            node = await core.read_node("vnode")
            return conditions(node)["Ready"] == ("True", "KubeletReady") and not any(
                key.startswith("node.kubernetes.io/") for key, _, _ in taints(node))

        await eventually(recovered, timeout_seconds=15, what="Ready again without lifecycle taints")

        async def pod_ready_again() -> Any:
            # The lifecycle controller marked the pod not Ready; vnode restores what the backend reports.
            pod = await core.read_namespaced_pod("p", "default")
            return pod if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions) else None

        pod = await eventually(pod_ready_again, what="the pod Ready again")
        assert pod.metadata.deletion_timestamp is None and pod.status.phase == "Running"
