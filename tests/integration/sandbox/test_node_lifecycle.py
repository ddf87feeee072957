"""The node lifecycle controller: a node whose Lease lapses goes Unknown and unreachable-tainted, and recovers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from tests.support.sandbox import RunningSandbox, running_sandbox
from tests.support.wait import eventually

GRACE_SECONDS = 1.0


@pytest.fixture
async def fast_sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "s", node_monitor_grace_seconds=GRACE_SECONDS,
                               node_monitor_period_seconds=0.1) as sandbox:
        yield sandbox


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def heartbeat(core: client.CoreV1Api, coordination: client.CoordinationV1Api) -> None:
    """What a kubelet does: renew the Lease and post Ready."""
    await coordination.patch_namespaced_lease("vnode", "kube-node-lease", {"spec": {"renewTime": now()}})
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    await core.patch_node_status("vnode", {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": stamp}]}})


def taint_keys(node: Any) -> set[str]:
    return {t.key for t in node.spec.taints or []}


async def test_lapsed_lease_marks_node_unknown_and_tainted_then_recovers(fast_sandbox: RunningSandbox) -> None:
    """No renewal for the grace period → Ready=Unknown + unreachable taints; renewal → taints removed."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(fast_sandbox.kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration=configuration) as api:
        core, coordination = client.CoreV1Api(api), client.CoordinationV1Api(api)
        await core.create_node({"metadata": {"name": "vnode"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now()[:19] + "Z"}]}})
        await coordination.create_namespaced_lease("kube-node-lease", {"metadata": {"name": "vnode"}, "spec": {
            "holderIdentity": "vnode", "leaseDurationSeconds": 40, "renewTime": now()}})
        await core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {
            "nodeName": "vnode", "containers": [{"name": "c", "image": "busybox"}]}})
        await core.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}]}})

        async def unknown() -> Any:
            node = await core.read_node("vnode")
            ready = next(c for c in node.status.conditions if c.type == "Ready")
            return node if ready.status == "Unknown" else None

        node = await eventually(unknown, timeout_seconds=10, what="Ready=Unknown")
        assert taint_keys(node) == {"node.kubernetes.io/unreachable"}
        assert {t.effect for t in node.spec.taints} == {"NoSchedule", "NoExecute"}
        pod = await core.read_namespaced_pod("p", "default")
        assert [c.status for c in pod.status.conditions if c.type == "Ready"] == ["False"]

        async def untainted() -> Any:
            await heartbeat(core, coordination)  # a live kubelet keeps renewing
            recovered = await core.read_node("vnode")
            return recovered if not taint_keys(recovered) else None

        recovered = await eventually(untainted, timeout_seconds=10, what="taints removed")
        assert [c.status for c in recovered.status.conditions if c.type == "Ready"] == ["True"]
