"""The SQLite ledger itself: schema, retention, reopening, clipping open intervals, refusing what it cannot read."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.cost.conftest import START
from vnode.cost.identity import BuildRef, PodIdentity
from vnode.cost.ledger import SCHEMA_VERSION, CostLedger
from vnode.cost.ledger_rows import PodRecord
from vnode.cost.pricing import PriceBasis
from vnode.cost.shape import BilledShape
from vnode.errors import ConfigError

BASIS = PriceBasis(currency="CNY", source="eci-list:cn-hangzhou", vcpu_second=Decimal("0.000049"),
                   gib_second=Decimal("0.00000613"))


def _record(uid: str) -> PodRecord:
    return PodRecord(PodIdentity("ci", f"pod-{uid}", uid, provider="eci", build=BuildRef("app", "1")),
                     BilledShape(cpu=Decimal(2), memory_gib=Decimal(4), reported=True), BASIS)


async def _ended_pod(ledger: CostLedger, uid: str, *, start_days: float, run_seconds: int) -> None:
    start = START + timedelta(days=start_days)
    ledger.upsert_pod(_record(uid), start)
    ledger.set_state(uid, "Running", True, start)
    ledger.end_pod(uid, start + timedelta(seconds=run_seconds), "Succeeded")
    await ledger.flush()


async def test_the_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    ledger = await CostLedger.open(tmp_path / "l.sqlite3")
    await ledger.aclose()
    with sqlite3.connect(tmp_path / "l.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_retention_deletes_pods_that_ended_before_the_cutoff(tmp_path: Path) -> None:
    ledger = await CostLedger.open(tmp_path / "l.sqlite3")
    try:
        await _ended_pod(ledger, "old", start_days=0, run_seconds=60)
        await _ended_pod(ledger, "new", start_days=10, run_seconds=60)
        ledger.upsert_pod(_record("running"), START)
        ledger.set_state("running", "Running", True, START)
        removed = await ledger.prune(START + timedelta(days=5))
        remaining = {uid: await ledger.pod(uid) is not None for uid in ("old", "new", "running")}
    finally:
        await ledger.aclose()
    assert (removed, remaining) == (1, {"old": False, "new": True, "running": True})


async def test_reopened_ledger_lists_open_pods_with_their_billed_time(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = await CostLedger.open(path)
    ledger.upsert_pod(_record("u"), START)
    ledger.set_state("u", "Pending", True, START)
    ledger.set_state("u", "Running", True, START + timedelta(seconds=8))
    await ledger.aclose()
    reopened = await CostLedger.open(path)
    try:
        [pod] = await reopened.open_pods()
    finally:
        await reopened.aclose()
    assert (pod.record, pod.billed_micros, pod.state, pod.billed, pod.since) == (
        _record("u"), 8_000_000, "Running", True, START + timedelta(seconds=8))


async def test_close_open_intervals_ends_only_the_pods_named(tmp_path: Path) -> None:
    ledger = await CostLedger.open(tmp_path / "l.sqlite3")
    try:
        for uid in ("a", "b"):
            ledger.upsert_pod(_record(uid), START)
            ledger.set_state(uid, "Running", True, START)
        ended = await ledger.close_open_intervals(START + timedelta(seconds=30), ["a"])
        rows = {uid: await ledger.pod(uid) for uid in ("a", "b")}
    finally:
        await ledger.aclose()
    assert ended == 1
    assert rows["a"] is not None and Decimal(rows["a"]["cost"]) == 30 * Decimal("0.00012252")
    assert rows["b"] is not None and rows["b"]["ended_us"] is None


async def test_usage_clips_billed_time_to_the_window_and_to_now(tmp_path: Path) -> None:
    ledger = await CostLedger.open(tmp_path / "l.sqlite3")
    try:
        await _ended_pod(ledger, "done", start_days=0, run_seconds=100)
        ledger.upsert_pod(_record("open"), START)
        ledger.set_state("open", "Running", True, START + timedelta(seconds=150))
        usages = await ledger.usage(START + timedelta(seconds=40), START + timedelta(seconds=1000),
                                    now=START + timedelta(seconds=200))
    finally:
        await ledger.aclose()
    assert {u.record.identity.uid: u.billed_micros for u in usages} == {"done": 60_000_000, "open": 50_000_000}


async def test_a_missing_ledger_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no cost ledger"):
        await CostLedger.open(tmp_path / "absent.sqlite3", create=False)
    assert not (tmp_path / "absent.sqlite3").exists()


async def test_a_ledger_from_a_newer_vnode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ConfigError, match="newer"):
        await CostLedger.open(path)
