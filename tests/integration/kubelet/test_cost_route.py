"""`/cost/report` on vnode's kubelet API: the node's cost ledger as a report, through `kubectl get --raw
/api/v1/nodes/<node>/proxy/cost/report?...` and called directly, authorized as a read of nodes/proxy; and the
cost counters on `/metrics`. The pods run on the mock provider (notional prices, labelled estimates)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.kubelet.test_kubelet_api import get, insecure_ssl
from tests.support.agent import running_agent
from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.sandbox import running_sandbox
from tests.support.wait import eventually
from vnode.kube import paths


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """The metav1.Status an error answers with (kubectl prints its message)."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def jenkins_pod(node: str, name: str, job: str, build: int, *, run_seconds: float | None = None) -> dict[str, Any]:
    """An agent pod as the kubernetes-plugin's podTemplate step annotates it (runUrl names job and build)."""
    env = [{"name": "VNODE_MOCK_RUN_SECONDS", "value": str(run_seconds)}] if run_seconds is not None else []
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"jenkins": "slave"},
                         "annotations": {"runUrl": f"job/{job}/{build}/"}},
            "spec": {"nodeName": node, "restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "jnlp", "image": "busybox", "env": env,
                                     "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}]}}


async def run_pod(world: KubeletWorld, pod: dict[str, Any], phase: str) -> dict[str, Any]:
    await world.kubectl().run("create", "-f", "-", stdin=yaml.safe_dump(pod).encode())
    name = pod["metadata"]["name"]
    return await world.wait_pod(name, lambda p: p.get("status", {}).get("phase") == phase, phase)


async def test_report_by_build_through_kubectl_get_raw(world: KubeletWorld) -> None:
    await run_pod(world, jenkins_pod(world.node, "app-7-agent", "app", 7), "Running")
    report = json.loads(await world.raw("/cost/report?by=build&format=json"), parse_float=Decimal)
    assert report["by"] == "build"
    [row] = report["rows"]
    assert (row["key"], row["job"], row["build"], row["pods"], row["currency"], row["estimate"]) == (
        "app #7", "app", "7", 1, "CNY", True)
    assert row["last_end"] == ""  # still running: billed up to the moment of the report


async def test_each_format_has_its_content_type(world: KubeletWorld) -> None:
    admin = insecure_ssl(world.apiserver_client_ssl())
    for fmt, content_type in (("table", "text/plain; charset=utf-8"), ("csv", "text/csv; charset=utf-8"),
                              ("json", "application/json"), ("html", "text/html; charset=utf-8")):
        headers, body = await _get_with_headers(world, f"/cost/report?format={fmt}", admin)
        assert headers["Content-Type"] == content_type, fmt
        assert body, fmt
    assert (await _get_with_headers(world, "/cost/report", admin))[1].startswith("Cost by build, ")


@pytest.mark.parametrize(("query", "message"), [
    ("by=pod", "by: must be build, job, namespace or label:KEY, not 'pod'"),
    ("format=pdf", "format: must be one of table, csv, json, html, not 'pdf'"),
    ("since=yesterday", "since: 'yesterday' is neither a duration like 7d, 12h or 30m nor an RFC 3339 time like "
                        "2026-01-31T12:00:00Z"),
    ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
     "since (2026-02-01T00:00:00+00:00) must be before until (2026-01-01T00:00:00+00:00)"),
])
async def test_bad_parameters_are_400_naming_the_parameter(world: KubeletWorld, query: str, message: str) -> None:
    code, text = await get(world, f"/cost/report?{query}", ctx=insecure_ssl(world.apiserver_client_ssl()))
    assert (code, json.loads(text)) == (400, status(400, "BadRequest", message))


async def test_kubectl_shows_the_bad_parameter(world: KubeletWorld) -> None:
    result = await world.kubectl().run("get", "--raw", f"/api/v1/nodes/{world.node}/proxy/cost/report?by=pod",
                                       check=False)
    assert result.returncode != 0
    assert result.stderr == ("Error from server (BadRequest): by: must be build, job, namespace or label:KEY, not "
                             "'pod'\n")


async def test_a_report_is_a_read_of_nodes_proxy(world: KubeletWorld) -> None:
    """The sandbox's read-only `viewer` may `get` nodes/proxy: it gets the report; a POST asks for `create`."""
    code, body = await get(world, "/cost/report?format=json", token=world.token("viewer"))
    assert code == 200 and json.loads(body)["by"] == "build"
    code, body = await get(world, "/cost/report", token=world.token("viewer"), method="POST")
    assert (code, body) == (403, "Forbidden (user=viewer, verb=create, resource=nodes, subresource(s)=[proxy])\n")
    assert (await get(world, "/cost/report"))[0] == 401


async def test_cost_counters_per_namespace_and_job_on_metrics(world: KubeletWorld) -> None:
    """A finished pod's billed time reaches `/metrics` under its namespace and job; no label names the build."""
    await run_pod(world, jenkins_pod(world.node, "lib-3-agent", "lib", 3, run_seconds=0.5), "Succeeded")

    async def counted() -> dict[str, Any] | None:
        families = {f.name: f for f in text_string_to_metric_families(await world.raw("/metrics"))}
        seconds = [s for s in families["vnode_billed_seconds"].samples if s.name.endswith("_total")]
        return {"seconds": seconds, "cost": families["vnode_cost"].samples} if seconds else None

    found = await eventually(counted, timeout_seconds=WAIT, what="the cost counters")
    [seconds] = found["seconds"]
    assert seconds.labels == {"namespace": "default", "job": "lib"}
    assert seconds.value >= 0.5
    cost = [s for s in found["cost"] if s.name == "vnode_cost_total"]
    assert [s.labels for s in cost] == [{"namespace": "default", "job": "lib", "currency": "CNY"}]
    assert cost[0].value > 0


async def test_final_cost_annotation_is_the_ledgers_cost(world: KubeletWorld) -> None:
    """The `vnode.io/cost` annotation lands on the pod as it ends: the ledger's final cost for it, to the
    micro-yuan (rounded half up), marked as an estimate (the mock's notional rate)."""
    pod = await run_pod(world, jenkins_pod(world.node, "lib-4-agent", "lib", 4, run_seconds=0.5), "Succeeded")

    async def annotated() -> str | None:
        stored = await world.agent.client.get(paths.pod_path("default", "lib-4-agent"))
        return (stored["metadata"].get("annotations") or {}).get("vnode.io/cost")

    annotation = await eventually(annotated, timeout_seconds=WAIT, what="the vnode.io/cost annotation")
    ledger = world.sandbox.state_dir / "cost" / "ledger.sqlite3"

    async def final_cost() -> str | None:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
            row = db.execute("SELECT cost FROM pods WHERE uid = ?", (pod["metadata"]["uid"],)).fetchone()
        return row[0] if row else None

    cost = Decimal(await eventually(final_cost, timeout_seconds=WAIT, what="the ledger's final cost"))
    assert cost > 0
    assert annotation == f"{cost.quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP)} CNY (estimate)"


@pytest.fixture
async def costless_world(tmp_path: Path) -> AsyncIterator[KubeletWorld]:
    async with running_sandbox(tmp_path / "sandbox") as sandbox, \
            running_agent(sandbox, cost={"enabled": False}) as agent:
        yield KubeletWorld(sandbox, agent, tmp_path)


async def test_disabled_ledger_is_404_saying_so(costless_world: KubeletWorld) -> None:
    code, body = await get(costless_world, "/cost/report", ctx=insecure_ssl(costless_world.apiserver_client_ssl()))
    assert (code, json.loads(body)) == (404, status(404, "NotFound", "the cost ledger is disabled on this node "
                                                    "(cost.enabled=false)"))
    assert not (costless_world.sandbox.state_dir / "cost").exists()


async def _get_with_headers(world: KubeletWorld, path: str, ctx: Any) -> tuple[dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(world.kubelet_url + path, ssl=ctx) as response:
        assert response.status == 200, await response.text()
        return dict(response.headers), await response.text()
