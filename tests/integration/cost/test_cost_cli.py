"""`vnode cost report` as a subprocess, on a ledger the recorder wrote while the mock provider ran Jenkins-shaped
builds on a ManualClock (so every billed second is known)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.cost.conftest import START, jenkins_pod
from tests.support.wait import eventually
from vnode.clock import ManualClock
from vnode.config import MockProviderSettings
from vnode.cost.ledger import CostLedger
from vnode.cost.recorder import CostRecordingProvider
from vnode.providers.base import EnvVar, PodStatusUpdate, ResolvedPod
from vnode.providers.mock import MockProvider

PER_SECOND = Decimal("0.000049") + 2 * Decimal("0.00000613")  # 1 vCPU, 2 GiB at the default notional rate
BUILDS = (("team/app", 1, 60), ("team/app", 2, 90), ("lib", 5, 30), ("team/app", 3, 45))
WINDOW = ("--since", "2023-12-31T00:00:00Z", "--until", "2024-01-02T00:00:00Z")


def _pod(job: str, build: int, seconds: int) -> ResolvedPod:
    pod = jenkins_pod(job, build, f"uid-{job}-{build}", containers=[
        {"name": "jnlp", "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}])
    return ResolvedPod(pod.ref, pod.pod, env={"jnlp": (EnvVar("VNODE_MOCK_RUN_SECONDS", str(seconds)),)})


@pytest.fixture
async def ledger_file(tmp_path: Path) -> AsyncIterator[Path]:
    """Builds run one after another; the last pod is deleted the moment it ends, as Jenkins does."""
    path, clock = tmp_path / "cost.sqlite3", ManualClock(START)
    ledger = await CostLedger.open(path)
    recorder = CostRecordingProvider(MockProvider(MockProviderSettings(), clock), ledger, clock=clock,
                                     provider_name="mock")
    seen: list[PodStatusUpdate] = []
    task = asyncio.create_task(recorder.run(seen.append), name="recorder over mock")
    try:
        for job, build, seconds in BUILDS:
            pod = _pod(job, build, seconds)
            await recorder.create_pod(pod)

            async def phase(wanted: str, uid: str = pod.ref.uid) -> bool:
                return any(u.ref.uid == uid and u.phase == wanted for u in seen)

            await eventually(lambda: phase("Running"), what=f"{pod.ref.key} Running")
            await clock.advance(seconds)
            await eventually(lambda: phase("Succeeded"), what=f"{pod.ref.key} Succeeded")
            if build == 3:
                await recorder.delete_pod(pod.ref, 30)
            await clock.advance(10)  # between builds
        await ledger.flush()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ledger.aclose()
    yield path


async def _report(path: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "cost", "report", "--db", str(path), *WINDOW, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_json_report_by_build_matches_the_arithmetic(ledger_file: Path) -> None:
    document = json.loads(await _report(ledger_file, "--format", "json"), parse_float=Decimal)
    assert [(r["key"], r["billed_seconds"], r["cost"], r["estimate"]) for r in document["rows"]] == [
        (f"{job} #{build}", seconds, seconds * PER_SECOND, True) for job, build, seconds in BUILDS]
    assert document["totals"][0]["cost"] == 225 * PER_SECOND


async def test_csv_report_by_job(ledger_file: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(await _report(ledger_file, "--by", "job", "--format", "csv"))))
    assert [(r["key"], r["builds"], Decimal(r["cost"])) for r in rows] == [
        ("team/app", "3", 195 * PER_SECOND), ("lib", "1", 30 * PER_SECOND)]


async def test_table_report_by_namespace(ledger_file: Path) -> None:
    lines = (await _report(ledger_file, "--by", "namespace")).splitlines()
    assert lines[2].split() == ["ci", "4", "0:03:45", f"{(225 * PER_SECOND).quantize(Decimal('0.000001'))}*",
                                "CNY"]


async def test_html_report_is_written_to_one_file(ledger_file: Path, tmp_path: Path) -> None:
    output = tmp_path / "report.html"
    assert await _report(ledger_file, "--format", "html", "--output", str(output)) == ""
    page = output.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<rect") == 4 and "team/app" in page
    assert "http://" not in page and "https://" not in page


async def test_a_bad_window_is_refused_with_the_parameter_named(ledger_file: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "cost", "report", "--db", str(ledger_file), "--since", "last tuesday",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        _, err = await process.communicate()
    assert process.returncode == 2 and b"since" in err
