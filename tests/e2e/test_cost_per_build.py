"""Cost per build, end to end: Jenkins-shaped builds run on the sandbox's virtual node backed by the ECI emulator
(sim runtime); `vnode cost report --by build` must match the arithmetic Σ shape × price × billed seconds, before and
after vnode restarts, over `kubectl get --raw .../proxy/cost/report` too, and the HTML report must open in headless
Chromium.

How the expectation is derived (never from the ledger's computed cost):
- shape: the vCPU and GiB the emulator gave each group (what ECI bills: the rounded-up spec, not the requests);
- price: the emulator's price table, deliberately unlike vnode's configured `cost.prices`, so the numbers only agree
  if vnode asked ECI (DescribeContainerGroupPrice) for its prices;
- billed seconds: ECI bills a group from Scheduling → Pending until it ends (Succeeded/Failed) or is deleted. vnode
  can only know a state change when a status poll brings it, so it bills from the first update that shows a billed
  state to the first that shows the end (or to the delete it sent). Each pod's billed intervals are read from the
  ledger file as recorded and checked against the emulator's own billing start and end: each boundary lies at or
  after ECI's and within one status-poll lag of it (`LAG`), so vnode's billed time is ECI's to the second. The
  expected cost is then that recorded time × shape × price, computed here, compared to the report to the 12
  decimal places it prints.
A build that runs across a vnode restart keeps being billed while vnode is down (ECI keeps billing the group).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cost_support import (
    COST,
    INSTANCE_ID,
    Build,
    EciBilling,
    LedgerPod,
    agent_pod,
    create_pods,
    dump_dom,
    eci_billing,
    read_ledger,
    rows_by_key,
    vnode_cost_report,
    wait_ended_in_ledger,
    wait_phase,
)
from tests.support.agent import running_agent
from tests.support.eci_world import EciBackend, eci_backend
from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.sandbox.eci.server import EciEmulator

pytestmark = pytest.mark.kubectl
NODE = "test-cost"
# The emulator's list prices (CNY per second); vnode's own cost.prices keep the defaults (0.000049, 0.00000613).
VCPU_SECOND, GIB_SECOND = Decimal("0.00005"), Decimal("0.000007")
EMULATOR = {"prices": {"default": {"vcpu_second": float(VCPU_SECOND), "gib_second": float(GIB_SECOND)}},
            # Long enough to be seen by a poll, and billed: the Pending (image pull) stretch.
            "scheduling_seconds": 0.1, "pending_seconds": 1.5}
# A status poll (FAST_ECI: every 0.2 s), the API call and the update's way to the recorder, with room for a busy host.
LAG = timedelta(seconds=1)
TWELVE = Decimal("1e-12")

APP_41 = Build("ci", "team/app", 41, (("1", "2Gi", 2.0),))
LIB_7 = Build("ci", "team/lib", 7, (("2", "4Gi", 1.0), ("500m", "1Gi", 2.5)))  # one build, two agent pods
DOCS_3 = Build("default", "docs", 3, (("500m", "1Gi", 1.0),))  # deleted the moment it ends, as Jenkins does
APP_42 = Build("ci", "team/app", 42, (("1", "2Gi", 12.0),))  # runs across a vnode restart


class Story:
    """The builds sent so far: their pods as stored, the emulator's billing of each, and the ledger file."""

    def __init__(self, backend: EciBackend, ledger: Path, client: KubeClient) -> None:
        self.backend, self.ledger, self.client = backend, ledger, client
        self.kubectl = Kubectl(kubectl_binary(), backend.sandbox.kubeconfig)
        self.pods: dict[str, tuple[Build, dict[str, Any]]] = {}  # by uid
        self.eci: dict[str, EciBilling] = {}  # by uid, as the emulator had it when the pod ended

    @property
    def emulator(self) -> EciEmulator:
        return self.backend.emulator

    async def start(self, *builds: Build) -> list[dict[str, Any]]:
        manifests = [agent_pod(b, i, NODE) for b in builds for i in range(len(b.pods))]
        await create_pods(self.kubectl, manifests)
        stored = []
        for build, manifest in zip([b for b in builds for _ in b.pods], manifests, strict=True):
            meta = manifest["metadata"]
            pod = await self.client.get(paths.pod_path(meta["namespace"], meta["name"]))
            self.pods[pod["metadata"]["uid"]] = (build, pod)
            stored.append(pod)
        return stored

    async def finish(self, pod: dict[str, Any], *, delete: bool = False) -> dict[str, Any]:
        """Wait until the API server shows the pod Succeeded; note the emulator's billing of its group; with
        `delete`, delete the pod at once (the group goes with it)."""
        done = await wait_phase(self.client, pod, "Succeeded")
        meta = done["metadata"]
        billing = eci_billing(self.emulator, meta["annotations"][INSTANCE_ID])
        if delete:
            await self.kubectl.run("delete", "pod", "-n", meta["namespace"], meta["name"], "--wait=false")
        assert billing.status == "Succeeded" and billing.ended is not None
        self.eci[meta["uid"]] = billing
        return done

    def expected(self, ledger: dict[str, LedgerPod]) -> dict[str, tuple[Decimal, Decimal]]:
        """Per build key: (billed seconds, cost) from the recorded intervals, the emulator's shapes and prices,
        after checking every interval against the emulator's billing of the group."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for uid, billing in self.eci.items():
            build, _ = self.pods[uid]
            recorded = ledger[uid]
            check_against_eci(recorded, billing)
            seconds = Decimal(recorded.billed_micros) / 1_000_000
            cost = (billing.cpu * VCPU_SECOND + billing.memory_gib * GIB_SECOND) * seconds
            before = out.get(build.key, (Decimal(0), Decimal(0)))
            out[build.key] = (before[0] + seconds, before[1] + cost)
        return out

    async def report_matches(self, report_json: str, *, running: Iterable[Build] = ()) -> None:
        """Every finished build's row is the arithmetic's; a running build's row is open (no end yet)."""
        ledger = await wait_ended_in_ledger(self.ledger, list(self.eci))
        expected = self.expected(ledger)
        rows = rows_by_key(report_json)
        open_keys = {b.key for b in running}
        assert set(rows) == set(expected) | open_keys, report_json
        assert all(rows[key]["last_end"] == "" and rows[key]["billed_seconds"] > 0 for key in open_keys), rows
        for key, (seconds, cost) in expected.items():
            row = rows[key]
            assert row["billed_seconds"] == seconds, (key, row)
            assert row["cost"] == cost.quantize(TWELVE, rounding=ROUND_HALF_EVEN), (key, row, cost)
            assert (row["currency"], row["estimate"], row["last_end"] != "") == ("CNY", False, True), row
        pods_per_build = {b.key: len(b.pods) for b, _ in self.pods.values()}
        assert {k: r["pods"] for k, r in rows.items()} == {k: pods_per_build[k] for k in rows}


def check_against_eci(recorded: LedgerPod, billing: EciBilling) -> None:
    """vnode's billed time begins and ends at or after ECI's boundaries, within one poll lag: it is ECI's billed
    time to the second, seen `LAG` late at most at each end."""
    assert recorded.billed, f"pod {recorded.uid} was never billed"
    first, last = recorded.billed[0][0], recorded.billed[-1][1]
    assert last is not None and billing.ended is not None
    started, ended = micros(billing.started), micros(billing.ended)
    lag = LAG // timedelta(microseconds=1)
    assert started <= first <= started + lag, (recorded, billing)
    assert ended <= last <= ended + lag, (recorded, billing)
    # Billed without a gap from the first billed state to the end (Pending, then Running).
    assert all(a[1] == b[0] for a, b in zip(recorded.billed, recorded.billed[1:], strict=False)), recorded
    eci_seconds = (billing.ended - billing.started).total_seconds()
    assert abs(recorded.billed_micros / 1e6 - eci_seconds) < 1.0, (recorded, billing)


def micros(moment: Any) -> int:
    return int(moment.timestamp() * 1_000_000)


def annotated_costs_match(story: Story, ledger: dict[str, LedgerPod], pods: Iterable[dict[str, Any]]) -> None:
    """Each pod's final `vnode.io/cost` is the ledger's cost for it, rounded half up to 6 places (list prices of
    a shape ECI reported: no estimate), and that cost is the arithmetic's."""
    for pod in pods:
        uid = pod["metadata"]["uid"]
        recorded = ledger[uid]
        assert recorded.cost is not None
        assert pod["metadata"]["annotations"][COST] == f"{recorded.cost.quantize(Decimal('1e-6'), ROUND_HALF_UP)} CNY"
        billing = story.eci[uid]
        arithmetic = (billing.cpu * VCPU_SECOND + billing.memory_gib * GIB_SECOND) * recorded.billed_micros / 10**6
        assert recorded.cost == arithmetic


async def scrape(story: Story) -> dict[str, Any]:
    text = (await story.kubectl.run("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/metrics")).stdout
    return {f.name: f for f in text_string_to_metric_families(text)}


def counters_match(families: dict[str, Any], ledger: dict[str, LedgerPod], story: Story) -> None:
    """`vnode_billed_seconds_total` and `vnode_cost_total` per namespace and job hold the billed intervals closed
    so far; no label names a build or a pod."""
    seconds: dict[tuple[str, str], Decimal] = {}
    cost: dict[tuple[str, str], Decimal] = {}
    for uid, recorded in ledger.items():
        billing = story.eci[uid]
        closed = sum((end - start for start, end in recorded.billed if end is not None), 0)
        key = (recorded.namespace, recorded.job)
        seconds[key] = seconds.get(key, Decimal(0)) + Decimal(closed) / 10**6
        rate = billing.cpu * VCPU_SECOND + billing.memory_gib * GIB_SECOND
        cost[key] = cost.get(key, Decimal(0)) + rate * closed / 10**6
    billed = {(s.labels["namespace"], s.labels["job"]): s.value for s in families["vnode_billed_seconds"].samples
              if s.name == "vnode_billed_seconds_total"}
    spent = {(s.labels["namespace"], s.labels["job"]): s.value for s in families["vnode_cost"].samples
             if s.name == "vnode_cost_total"}
    assert billed.keys() == seconds.keys() == spent.keys()
    for key, value in seconds.items():
        assert billed[key] == pytest.approx(float(value), abs=1e-6), key
        assert spent[key] == pytest.approx(float(cost[key]), rel=1e-9), key
    for family in ("vnode_billed_seconds", "vnode_cost"):
        for sample in families[family].samples:
            assert set(sample.labels) <= {"namespace", "job", "currency"}, sample


async def test_cost_per_build_matches_the_arithmetic_across_restarts(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    cost = {"db_path": ledger}
    async with eci_backend(tmp_path, NODE, runtime="sim", emulator=EMULATOR) as backend, \
            await KubeClient.connect(backend.sandbox.kubeconfig, qps=0, clock=SystemClock()) as client:
        story = Story(backend, ledger, client)
        await story.kubectl.run("create", "namespace", "ci")
        agent_sections: dict[str, Any] = {"node": {"name": NODE}, "provider": backend.provider, "cost": cost}

        async with running_agent(backend.sandbox, **agent_sections):
            pods = await story.start(APP_41, LIB_7, DOCS_3)
            docs = next(p for p in pods if p["metadata"]["namespace"] == "default")
            finished = [await story.finish(docs, delete=True)]
            finished += [await story.finish(p) for p in pods if p is not docs]
            recorded = await wait_ended_in_ledger(ledger, list(story.eci))
            annotated_costs_match(story, recorded, await annotated(story, finished[1:]))
            counters_match(await scrape(story), recorded, story)
            [long_pod] = await story.start(APP_42)
            await wait_phase(client, long_pod, "Running")
        # vnode is down: the ledger file alone answers, and APP_42 is still billed (its group runs on).
        first = await vnode_cost_report(ledger, "--by", "build", "--format", "json")
        await story.report_matches(first, running=[APP_42])

        async with running_agent(backend.sandbox, **agent_sections):
            group = await instance_of(client, long_pod)
            assert eci_billing(story.emulator, group).status == "Running", "APP_42 ended while vnode was down"
            await story.finish(long_pod)
            report = await vnode_cost_report(ledger, "--by", "build", "--format", "json")
            await story.report_matches(report)
            for key, row in rows_by_key(first).items():  # what was final before the restart is unchanged
                if key != APP_42.key:
                    assert rows_by_key(report)[key] == row
            raw = (await story.kubectl.run(
                "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/cost/report?by=build&format=json")).stdout
            assert rows_by_key(raw) == rows_by_key(report)
            recorded = await wait_ended_in_ledger(ledger, list(story.eci))
            annotated_costs_match(story, recorded, await annotated(story, [long_pod]))

        html = tmp_path / "report.html"
        await vnode_cost_report(ledger, "--by", "job", "--format", "html", "--output", str(html))
        dom, log = await dump_dom(html, tmp_path / "chromium-profile")
        # Chromium logs every console message (errors, failed loads, uncaught exceptions) as a CONSOLE line.
        assert not [line for line in log.splitlines() if ":CONSOLE" in line], log
        chart = re.search(r"<svg[^>]*>(.*?)</svg>", dom, re.S)
        assert chart is not None, dom
        titles = re.findall(r"<rect[^>]*><title>([^<:]+):", chart.group(1))
        assert sorted(titles) == sorted(b.key for b in (APP_41, APP_42, LIB_7, DOCS_3)), chart.group(1)
        top_jobs = dom.split("<h2>Top jobs</h2>", 1)[1].split("</table>", 1)[0]
        shown = re.findall(r"<tr><td>([^<]+)</td>", top_jobs)
        by_job: dict[str, Decimal] = {}
        for build, (_, spent) in story.expected(read_ledger(ledger)).items():
            by_job[build.rsplit(" #", 1)[0]] = by_job.get(build.rsplit(" #", 1)[0], Decimal(0)) + spent
        assert shown == sorted(by_job, key=lambda job: -by_job[job]), top_jobs


async def annotated(story: Story, pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods as stored once their `vnode.io/cost` annotation has landed."""
    out = []
    for pod in pods:
        meta = pod["metadata"]

        async def probe(meta: dict[str, Any] = meta) -> dict[str, Any] | None:
            stored = await story.client.get(paths.pod_path(meta["namespace"], meta["name"]))
            return stored if COST in (stored["metadata"].get("annotations") or {}) else None

        out.append(await eventually(probe, timeout_seconds=10, what=f"{meta['name']}'s {COST} annotation"))
    return out


async def instance_of(client: KubeClient, pod: dict[str, Any]) -> str:
    meta = pod["metadata"]
    stored = await client.get(paths.pod_path(meta["namespace"], meta["name"]))
    return str(stored["metadata"]["annotations"][INSTANCE_ID])
