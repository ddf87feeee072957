"""What the cost-per-build story reads at its real boundaries: Jenkins-shaped pods sent with kubectl, the ECI
emulator's own record of each group (its shape and when ECI started and stopped billing it), the ledger's SQLite
file as vnode wrote it, `vnode cost report` run as a command, and the HTML report opened in headless Chromium."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kubectl import Kubectl
from tests.support.wait import eventually
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.sandbox.eci.server import EciEmulator

WAIT = 30.0
INSTANCE_ID = "k8s.aliyun.com/eci-instance-id"
COST = "vnode.io/cost"
JENKINS_URL = "http://jenkins.ci.svc:8080/"


@dataclass(frozen=True)
class Build:
    namespace: str
    job: str  # the job's full name, folders included (`team/app`)
    number: int
    pods: tuple[tuple[str, str, float], ...]  # per agent pod: build container's cpu and memory requests, seconds

    @property
    def key(self) -> str:
        """The report's row key for this build."""
        return f"{self.job} #{self.number}"


def agent_pod(build: Build, index: int, node: str) -> dict[str, Any]:
    """Agent pod `index` of `build` as the kubernetes-plugin's podTemplate step makes it (jenkins-plugin.md §1):
    the run's URLs as annotations, `jenkins/label` from the run's id, the plugin's `jnlp` container with its default
    requests beside a build container; the node chosen by nodeSelector and the taint tolerated, as the examples'
    pod template does. The containers end by themselves after their seconds (the sim runtime's VNODE_SIM_*)."""
    cpu, memory, seconds = build.pods[index]
    base = f"{build.job.rsplit('/', 1)[-1]}-{build.number}"
    suffix = "bcdfg"[index] * 5
    run_url = "".join(f"job/{part}/" for part in build.job.split("/")) + f"{build.number}/"
    env = [{"name": "VNODE_SIM_RUN_SECONDS", "value": str(seconds)}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": f"{base}-{suffix}-{suffix[::-1]}x", "namespace": build.namespace,
            "labels": {"jenkins": "slave", "jenkins/label": f"{build.job.replace('/', '_')}_{build.number}-{suffix}",
                       "kubernetes.jenkins.io/controller": "http___jenkins_ci_svc_8080x"},
            "annotations": {"runUrl": run_url, "buildUrl": JENKINS_URL + run_url}},
        "spec": {
            "restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": node},
            "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {"name": "jnlp", "image": "jenkins/inbound-agent:3355.v388858a_47b_33-3-jdk21", "env": env,
                 "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
                {"name": "build", "image": "maven:3.9", "command": ["cat"], "tty": True, "env": env,
                 "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}


async def create_pods(kubectl: Kubectl, pods: list[dict[str, Any]]) -> None:
    await kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump_all(pods).encode())


async def wait_phase(client: KubeClient, pod: dict[str, Any], phase: str) -> dict[str, Any]:
    meta = pod["metadata"]

    async def probe() -> dict[str, Any] | None:
        stored = await client.get(paths.pod_path(meta["namespace"], meta["name"]))
        return stored if stored.get("status", {}).get("phase") == phase else None

    return await eventually(probe, timeout_seconds=WAIT, interval=0.02, what=f"pod {meta['name']} {phase}")


@dataclass(frozen=True)
class EciBilling:
    """The emulator's record of a group: the shape ECI bills and when its billing started and ended (the
    Scheduling → Pending boundary, and the instant every container had exited)."""

    cpu: Decimal
    memory_gib: Decimal
    started: datetime
    ended: datetime | None
    status: str


def eci_billing(emulator: EciEmulator, group_id: str) -> EciBilling:
    group = emulator.store.get(group_id)
    snapshot = emulator.runtime.snapshot(group, emulator.clock.now())
    assert snapshot.scheduled_at is not None, f"group {group_id} was never scheduled"
    return EciBilling(Decimal(str(group.cpu)), Decimal(str(group.memory)), snapshot.scheduled_at,
                      snapshot.ended_at, snapshot.status)


@dataclass(frozen=True)
class LedgerPod:
    """One pod as the ledger file holds it: its billed intervals as recorded (start, end in µs since the epoch)."""

    uid: str
    job: str
    build: str
    namespace: str
    ended: bool
    cost: Decimal | None  # the ledger's own final cost: only ever compared with the pod's annotation
    billed: tuple[tuple[int, int | None], ...]

    @property
    def billed_micros(self) -> int:
        assert all(end is not None for _, end in self.billed), f"pod {self.uid} is still billed"
        return sum(end - start for start, end in self.billed if end is not None)


def read_ledger(path: Path) -> dict[str, LedgerPod]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        pods = db.execute("SELECT uid, job, build, namespace, ended_us, cost FROM pods").fetchall()
        intervals = db.execute("SELECT uid, start_us, end_us FROM intervals WHERE billed = 1 ORDER BY id").fetchall()
    return {uid: LedgerPod(uid, job, build, namespace, ended is not None, Decimal(cost) if cost else None,
                           tuple((s, e) for u, s, e in intervals if u == uid))
            for uid, job, build, namespace, ended, cost in pods}


async def wait_ended_in_ledger(path: Path, uids: list[str]) -> dict[str, LedgerPod]:
    async def probe() -> dict[str, LedgerPod] | None:
        pods = read_ledger(path)
        return pods if all(uid in pods and pods[uid].ended for uid in uids) else None

    return await eventually(probe, timeout_seconds=WAIT, what="the ledger to end the pods")


async def vnode_cost_report(ledger: Path, *args: str) -> str:
    """`vnode cost report --db LEDGER ARGS` as a user runs it: a separate process reading the file."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "vnode"), "cost", "report", "--db", str(ledger), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), WAIT)
    assert process.returncode == 0, err.decode()
    return out.decode()


def rows_by_key(report_json: str) -> dict[str, dict[str, Any]]:
    """The report's rows by key, amounts as exact Decimals."""
    document = json.loads(report_json, parse_float=Decimal)
    return {row["key"]: row for row in document["rows"]}


def chromium_binary() -> str:
    """Headless Chromium from tests/tools/test-env.sh; under CI a missing browser fails instead of skipping."""
    path = os.environ.get("VNODE_TEST_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        message = f"chromium is not installed at {path} (tests/tools/test-env.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


async def dump_dom(html: Path, profile: Path) -> tuple[str, str]:
    """(the DOM Chromium built from `html` (an absolute path), its log): opened from the file, as a team lead
    would."""
    process = await asyncio.create_subprocess_exec(
        chromium_binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", html.as_uri(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode(errors="replace")
    return out.decode(), err.decode(errors="replace")
