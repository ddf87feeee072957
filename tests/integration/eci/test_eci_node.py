"""The eci-backed virtual node under stress and failure, with the emulator's sim runtime: restarts (adoption by tag,
no duplicate group, orphans deleted), a burst against ECI's create quota, stock shortage, and an API outage."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.agent import running_agent
from tests.support.eci_world import EciBackend, eci_backend
from tests.support.kubelet_world import WAIT
from tests.support.relay import SocketRelay
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.providers.eci.translate import TAG_UID


@pytest.fixture
async def backend(tmp_path: Path, node_name: str) -> AsyncIterator[EciBackend]:
    async with eci_backend(tmp_path, node_name, runtime="sim") as running:
        yield running


@pytest.fixture
def node_name() -> str:
    return f"test-eci-node-{secrets.token_hex(3)}"


def pod_manifest(node: str, name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", **metadata},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}


def groups_of(backend: EciBackend, uid: str) -> list[Any]:
    return [g for g in backend.emulator.store.select() if (TAG_UID, uid) in g.tags]


async def wait_running(client: KubeClient, names: list[str]) -> dict[str, dict[str, Any]]:
    async def all_running() -> dict[str, dict[str, Any]] | None:
        pods = {p["metadata"]["name"]: p for p in (await client.get(paths.pods_path("default")))["items"]}
        ready = all(pods.get(n, {}).get("status", {}).get("phase") == "Running" for n in names)
        return pods if ready else None
    return await eventually(all_running, timeout_seconds=WAIT * 3, what=f"{len(names)} pods Running")


async def faults(backend: EciBackend, method: str, body: dict[str, Any] | None = None) -> None:
    """The emulator's operator API (unsigned, on its own port)."""
    async with aiohttp.ClientSession() as http, http.request(
            method, backend.emulator.endpoint + "/_emulator/faults", json=body) as answer:
        assert answer.status < 300, await answer.text()


async def test_restart_adopts_groups_by_tag_and_deletes_orphans(backend: EciBackend) -> None:
    node = backend.node
    async with running_agent(backend.sandbox, node={"name": node}, provider=backend.provider) as agent:
        client = agent.client
        for name in ("keep-a", "keep-b", "dropped"):
            await client.create(paths.pods_path("default"), pod_manifest(node, name))
        pods = await wait_running(client, ["keep-a", "keep-b", "dropped"])
    # vnode is gone (its groups run on); meanwhile one pod is removed for good.
    await client_delete_now(backend, "dropped")
    uids = {name: pods[name]["metadata"]["uid"] for name in pods}
    created_before = len(backend.emulator.calls("CreateContainerGroup"))
    async with running_agent(backend.sandbox, node={"name": node}, provider=backend.provider) as agent:
        async def orphan_deleted() -> bool:
            return not groups_of(backend, uids["dropped"])
        await eventually(orphan_deleted, timeout_seconds=WAIT, what="the orphaned group to be deleted")
        await wait_running(agent.client, ["keep-a", "keep-b"])
    assert len(backend.emulator.calls("CreateContainerGroup")) == created_before
    assert [len(groups_of(backend, uids[n])) for n in ("keep-a", "keep-b")] == [1, 1]


async def client_delete_now(backend: EciBackend, name: str) -> None:
    """Remove a pod from the API at once, as `kubectl delete --force --grace-period=0` does with no kubelet."""
    async with await KubeClient.connect(backend.sandbox.kubeconfig, qps=0, clock=SystemClock()) as client:
        await client.delete(paths.pod_path("default", name), grace_period_seconds=0)


async def test_a_lost_create_answer_is_retried_without_a_second_group(backend: EciBackend) -> None:
    # ECI applies the create, then the answer is lost (a 500 on the way back): the retry carries the same
    # ClientToken and gets the same group.
    await faults(backend, "POST", {"action": "CreateContainerGroup", "code": "InternalError", "times": 2,
                                   "after_apply": True})
    async with running_agent(backend.sandbox, node={"name": backend.node}, provider=backend.provider) as agent:
        await agent.client.create(paths.pods_path("default"), pod_manifest(backend.node, "once"))
        pods = await wait_running(agent.client, ["once"])
    assert len(groups_of(backend, pods["once"]["metadata"]["uid"])) == 1
    assert len(backend.emulator.calls("CreateContainerGroup")) == 3


async def test_a_burst_of_300_pods_meets_the_create_quota_without_failing_one(tmp_path: Path) -> None:
    # vnode's own buckets are opened wide so that ECI's (100 burst, 20/s) really throttles it.
    wide = {"CreateContainerGroup": {"burst": 10_000, "per_second": 10_000}}
    node = f"test-eci-burst-{secrets.token_hex(3)}"
    async with eci_backend(tmp_path, node, runtime="sim", quotas=wide) as backend, running_agent(
            backend.sandbox, node={"name": node}, provider=backend.provider, pods={"workers": 50}) as agent:
        names = [f"build-{n}" for n in range(300)]
        await asyncio.gather(*(agent.client.create(paths.pods_path("default"), pod_manifest(node, name))
                               for name in names))
        pods = await wait_running(agent.client, names)
        events = (await agent.client.get("/api/v1/namespaces/default/events"))["items"]
    throttled = [c for c in backend.emulator.calls("CreateContainerGroup") if c.code == "Throttling"]
    assert throttled, "ECI's quota never pushed back: the test did not exercise throttling"
    assert not [e for e in events if "Throttl" in (e.get("reason", "") + e.get("message", ""))]
    uids = [pods[name]["metadata"]["uid"] for name in names]
    assert sorted(len(groups_of(backend, uid)) for uid in uids) == [1] * 300
    assert len(backend.emulator.store) == 300


async def test_no_stock_on_the_first_spec_moves_to_the_next_with_an_event(backend: EciBackend) -> None:
    await faults(backend, "POST", {"no_stock": {"cpu": 2, "memory": 4}})
    annotations = {"k8s.aliyun.com/eci-use-specs": "2-4Gi,4-8Gi"}
    async with running_agent(backend.sandbox, node={"name": backend.node}, provider=backend.provider) as agent:
        await agent.client.create(paths.pods_path("default"),
                                  pod_manifest(backend.node, "stocked", annotations=annotations))
        pods = await wait_running(agent.client, ["stocked"])
        events = (await agent.client.get("/api/v1/namespaces/default/events"))["items"]
    [group] = groups_of(backend, pods["stocked"]["metadata"]["uid"])
    assert (group.cpu, group.memory) == (4.0, 8.0)
    warnings = [e for e in events if e["involvedObject"]["name"] == "stocked" and e["type"] == "Warning"]
    assert any("NoStock" in e["message"] and "2-4Gi" in e["message"] for e in warnings), warnings


async def test_an_api_outage_makes_the_node_not_ready_and_keeps_pods(backend: EciBackend) -> None:
    host, port = backend.emulator.endpoint.removeprefix("http://").rsplit(":", 1)
    relay = SocketRelay.to_tcp(host, int(port))
    await relay.start()
    provider = {**backend.provider, "endpoint": f"http://127.0.0.1:{relay.port}"}
    try:
        async with running_agent(backend.sandbox, node={"name": backend.node}, provider=provider) as agent:
            client = agent.client
            await client.create(paths.pods_path("default"), pod_manifest(backend.node, "steady"))
            before = (await wait_running(client, ["steady"]))["steady"]

            async def node_ready(expected: str) -> dict[str, Any] | None:
                node = await client.get(paths.node_path(backend.node))
                ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
                return ready if ready["status"] == expected else None

            await relay.cut()
            await eventually(lambda: node_ready("False"), timeout_seconds=WAIT, what="the node to go NotReady")
            during = await client.get(paths.pod_path("default", "steady"))
            assert during["status"]["phase"] == "Running"
            assert "deletionTimestamp" not in during["metadata"]
            await relay.start()
            await eventually(lambda: node_ready("True"), timeout_seconds=WAIT, what="the node Ready again")
            after = (await wait_running(client, ["steady"]))["steady"]
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert len(groups_of(backend, before["metadata"]["uid"])) == 1
    finally:
        with contextlib.suppress(Exception):
            await relay.cut()


async def test_stats_summary_reports_the_groups_metrics(backend: EciBackend) -> None:
    async with running_agent(backend.sandbox, node={"name": backend.node}, provider=backend.provider) as agent:
        await agent.client.create(paths.pods_path("default"), pod_manifest(backend.node, "measured"))
        await wait_running(agent.client, ["measured"])

        async def pod_stats() -> dict[str, Any] | None:
            summary = await agent.client.get(f"/api/v1/nodes/{backend.node}/proxy/stats/summary")
            found = [p for p in summary.get("pods", []) if p["podRef"]["name"] == "measured"]
            return found[0] if found and found[0].get("containers") else None
        stats = await eventually(pod_stats, timeout_seconds=WAIT, what="the pod in /stats/summary")
    [main] = stats["containers"]
    assert main["name"] == "main"
    assert main["memory"]["workingSetBytes"] > 0


async def test_a_spot_release_is_told_on_the_pod_and_fails_it(backend: EciBackend) -> None:
    annotations = {"k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo"}
    async with running_agent(backend.sandbox, node={"name": backend.node}, provider=backend.provider) as agent:
        manifest = pod_manifest(backend.node, "spot", annotations=annotations)
        await agent.client.create(paths.pods_path("default"), manifest)
        pods = await wait_running(agent.client, ["spot"])
        [group] = groups_of(backend, pods["spot"]["metadata"]["uid"])
        async with aiohttp.ClientSession() as http, http.post(
                backend.emulator.endpoint + "/_emulator/spot-release",
                json={"group_id": group.id, "notice_seconds": 1}) as answer:
            assert answer.status < 300, await answer.text()

        async def released() -> dict[str, Any] | None:
            pod = await agent.client.get(paths.pod_path("default", "spot"))
            return pod if pod.get("status", {}).get("phase") == "Failed" else None
        failed = await eventually(released, timeout_seconds=WAIT, what="the released spot pod to fail")

        async def warned() -> list[dict[str, Any]] | None:
            events = (await agent.client.get("/api/v1/namespaces/default/events"))["items"]
            found = [e for e in events if e["involvedObject"]["name"] == "spot" and e["reason"] == "SpotToBeReleased"]
            return found or None
        [warning] = await eventually(warned, timeout_seconds=WAIT, what="a SpotToBeReleased event on the pod")
    assert warning["type"] == "Warning"
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
