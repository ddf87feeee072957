"""The SQLite ledger itself: schema, retention, reopening, clipping open intervals, refusing what it cannot read."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.cost.conftest import START
from tests.support.wait import eventually
from vnode.cost.identity import BuildRef, PodIdentity
from vnode.cost.ledger import SCHEMA_VERSION, CostLedger
from vnode.cost.ledger_rows import PodRecord, micros
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


def _wal_commits(db: Path) -> int:
    """Transactions committed to the WAL since it was last restarted: frames whose header carries the database size
    after commit (bytes 4-8), counted while their salts match the WAL header's (sqlite.org/fileformat.html §4)."""
    wal = db.with_name(db.name + "-wal").read_bytes()
    if len(wal) < 32:
        return 0
    page_size, salts = int.from_bytes(wal[8:12], "big"), wal[16:24]
    commits, offset = 0, 32
    while offset + 24 + page_size <= len(wal) and wal[offset + 8:offset + 16] == salts:
        commits += int.from_bytes(wal[offset + 4:offset + 8], "big") != 0
        offset += 24 + page_size
    return commits


async def test_a_burst_of_writes_is_committed_in_a_few_transactions(tmp_path: Path) -> None:
    """150 writes queued at once (50 pods × create, run, end): one transaction per write would append 150 commits to
    the WAL (about 600 frames, below SQLite's 1,000-page checkpoint, so none is hidden by a WAL restart)."""
    path = tmp_path / "l.sqlite3"
    ledger = await CostLedger.open(path)
    try:
        before = _wal_commits(path)
        for n in range(50):
            ledger.upsert_pod(_record(f"u{n}"), START)
            ledger.set_state(f"u{n}", "Running", True, START)
            ledger.end_pod(f"u{n}", START + timedelta(seconds=n + 1), "Succeeded")
        await ledger.flush()
        commits = _wal_commits(path) - before
        usages = await ledger.usage(None, START + timedelta(days=1), START + timedelta(days=1))
    finally:
        await ledger.aclose()
    assert sorted(u.billed_micros for u in usages) == [(n + 1) * 1_000_000 for n in range(50)]
    assert commits < 10


async def test_a_failing_write_is_logged_and_the_others_queued_with_it_land(tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A state for a pod the ledger never recorded breaks the intervals' foreign key; the writes before and after
    it share its transaction and must not be lost with it."""
    ledger = await CostLedger.open(tmp_path / "l.sqlite3")
    try:
        ledger.upsert_pod(_record("a"), START)
        ledger.set_state("a", "Running", True, START)
        ledger.set_state("unknown", "Running", True, START)
        ledger.upsert_pod(_record("b"), START)
        ledger.set_state("b", "Running", True, START)
        await ledger.flush()
        rows = {uid: await ledger.pod(uid) for uid in ("a", "unknown", "b")}
    finally:
        await ledger.aclose()
    assert rows["unknown"] is None
    assert [(i["state"], i["start_us"]) for r in (rows["a"], rows["b"]) if r is not None for i in r["intervals"]] == [
        ("Running", micros(START)), ("Running", micros(START))]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"cost ledger {tmp_path / 'l.sqlite3'}: set_state failed: FOREIGN KEY constraint failed"]


async def test_queued_writes_reach_the_file_without_a_flush(tmp_path: Path) -> None:
    """`vnode cost report` reads the file from another process while vnode writes: writes land on their own, within
    the ledger's batching window."""
    path = tmp_path / "l.sqlite3"
    ledger = await CostLedger.open(path)

    async def stored() -> bool:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as reader:
            found: bool = reader.execute("SELECT count(*) FROM pods WHERE uid = 'seen'").fetchone()[0] == 1
        reader.close()
        return found

    try:
        ledger.upsert_pod(_record("seen"), START)
        await eventually(stored, timeout_seconds=5, what="the pod in the ledger file")
    finally:
        await ledger.aclose()
