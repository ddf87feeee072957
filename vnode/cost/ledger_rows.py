"""The ledger's records and its SQL, run on the ledger's worker thread only (see `ledger.CostLedger`).

Times are integer microseconds since the Unix epoch (UTC), so billed time adds up exactly; amounts are decimal
strings. The write methods do not commit: `apply` runs a batch of them in one transaction (a savepoint each) and
`atomically` one awaited call. Must not be called from the event loop: every method blocks on SQLite.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from vnode.cost.identity import BuildRef, PodIdentity
from vnode.cost.pricing import PriceBasis, cost_of
from vnode.cost.shape import BilledShape

T = TypeVar("T")
# A queued write: the name of a LedgerRows write method (`upsert_pod`, `set_state`, `end_pods`) and its arguments.
Write = tuple[str, tuple[Any, ...]]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICRO


def moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True, slots=True)
class PodRecord:
    """What the ledger keeps about a pod besides its intervals."""

    identity: PodIdentity
    shape: BilledShape
    basis: PriceBasis
    instance_id: str = ""


@dataclass(frozen=True)
class OpenPod:
    record: PodRecord
    billed_micros: int  # billed time in closed intervals
    state: str  # the open interval's state; "" when there is none
    billed: bool
    since: datetime | None


@dataclass(frozen=True)
class PodUsage:
    record: PodRecord
    created: datetime
    ended: datetime | None
    phase: str
    first_billed: datetime | None  # start of its first billed interval in the window, clipped to it
    billed_micros: int  # within the window

    @property
    def cost(self) -> Decimal:
        return cost_of(self.record.shape, self.record.basis, self.billed_micros)

    @property
    def billed_seconds(self) -> Decimal:
        return Decimal(self.billed_micros) / Decimal(1_000_000)


_POD_COLUMNS = ("uid, namespace, name, node, provider, instance_id, job, build, build_url, build_source, labels, cpu, "
                "memory_gib, gpu, gpu_type, instance_type, spot, zone, compute_category, shape_reported, currency, "
                "price_basis, estimate")
_UPDATED = ", ".join(f"{c} = excluded.{c}" for c in _POD_COLUMNS.split(", ")[1:])
_UPSERT = (f"INSERT INTO pods ({_POD_COLUMNS}, created_us) VALUES ({', '.join('?' * 24)}) "
           f"ON CONFLICT (uid) DO UPDATE SET {_UPDATED} WHERE pods.ended_us IS NULL")
_BASES_KEPT = 256


class LedgerRows:
    def __init__(self, conn: sqlite3.Connection) -> None:
        """`conn` in autocommit mode (isolation_level None): transactions are begun and committed here."""
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self._basis_json: dict[PriceBasis, str] = {}  # pods share a few bases: each serialized once

    def apply(self, writes: Sequence[Write], on_error: Callable[[str, Exception], None]) -> None:
        """Run `writes` in order in one transaction, as if each had its own: one that raises is undone alone and
        reported to `on_error`; the others are committed."""
        try:
            with self._transaction():
                for what, args in writes:
                    _WRITES[what](self, *args)
            return
        except Exception:
            pass  # rolled back; again, each write in a savepoint, to keep all but the failing ones
        with self._transaction():
            for what, args in writes:
                self.conn.execute("SAVEPOINT ledger_write")
                try:
                    _WRITES[what](self, *args)
                except Exception as exc:
                    self.conn.execute("ROLLBACK TO ledger_write")
                    on_error(what, exc)
                finally:
                    self.conn.execute("RELEASE ledger_write")

    def atomically(self, work: Callable[[LedgerRows], T]) -> T:
        """`work(self)` in one transaction, committed when it returns and rolled back when it raises."""
        with self._transaction():
            return work(self)

    def upsert_pod(self, record: PodRecord, at_us: int) -> None:
        i, s, b = record.identity, record.shape, record.basis
        values = (i.uid, i.namespace, i.name, i.node, i.provider, record.instance_id, i.build.job, i.build.build,
                  i.build.url, i.build.source, json.dumps(dict(i.labels), sort_keys=True) if i.labels else "{}",
                  str(s.cpu), str(s.memory_gib), s.gpu, s.gpu_type, s.instance_type, int(s.spot), s.zone,
                  s.compute_category, int(s.reported), b.currency, self._json_of(b), int(b.estimate), at_us)
        self.conn.execute(_UPSERT, values)

    def set_state(self, uid: str, state: str, billed: bool, at_us: int) -> None:
        current = self.conn.execute("SELECT pods.ended_us, intervals.state, intervals.billed FROM pods LEFT JOIN "
                                    "intervals ON intervals.uid = pods.uid AND intervals.end_us IS NULL "
                                    "WHERE pods.uid = ?", (uid,)).fetchone()
        if current is not None and current["ended_us"] is not None:
            return
        if current is not None and current["state"] == state and bool(current["billed"]) == billed:
            return
        self._close(uid, at_us)
        self.conn.execute("INSERT INTO intervals (uid, state, billed, start_us) VALUES (?, ?, ?, ?)",
                          (uid, state, int(billed), at_us))

    def end_pods(self, uids: Sequence[str], at_us: int, phase: str = "") -> None:
        for uid in uids:
            row = self.conn.execute(f"SELECT {_POD_COLUMNS} FROM pods WHERE uid = ? AND ended_us IS NULL",
                                    (uid,)).fetchone()
            if row is None:
                continue
            self._close(uid, at_us)
            billed = self.conn.execute("SELECT COALESCE(SUM(end_us - start_us), 0) FROM intervals "
                                       "WHERE uid = ? AND billed = 1", (uid,)).fetchone()[0]
            record = _record(row)
            cost = cost_of(record.shape, record.basis, billed)
            self.conn.execute("UPDATE pods SET ended_us = ?, cost = ?, "
                              "phase = CASE WHEN ? = '' THEN phase ELSE ? END WHERE uid = ?",
                              (at_us, str(cost), phase, phase, uid))

    def end_open(self, at_us: int, uids: Sequence[str] | None) -> int:
        rows = self.conn.execute("SELECT uid FROM pods WHERE ended_us IS NULL").fetchall()
        chosen = None if uids is None else set(uids)
        wanted = [r["uid"] for r in rows if chosen is None or r["uid"] in chosen]
        self.end_pods(wanted, at_us)
        return len(wanted)

    def open_pods(self) -> list[OpenPod]:
        out = []
        for row in self.conn.execute(f"SELECT {_POD_COLUMNS} FROM pods WHERE ended_us IS NULL").fetchall():
            closed = self.conn.execute("SELECT COALESCE(SUM(end_us - start_us), 0) FROM intervals WHERE uid = ? "
                                       "AND billed = 1 AND end_us IS NOT NULL", (row["uid"],)).fetchone()[0]
            current = self.conn.execute("SELECT state, billed, start_us FROM intervals WHERE uid = ? AND end_us IS "
                                        "NULL", (row["uid"],)).fetchone()
            out.append(OpenPod(record=_record(row), billed_micros=closed,
                               state=current["state"] if current else "", billed=bool(current and current["billed"]),
                               since=moment(current["start_us"]) if current else None))
        return out

    def usage(self, since_us: int | None, until_us: int, now_us: int) -> list[PodUsage]:
        since = since_us if since_us is not None else -(2**62)
        end = min(until_us, now_us)
        billed: dict[str, list[tuple[int, int]]] = {}
        for row in self.conn.execute(
                "SELECT uid, start_us, COALESCE(end_us, ?) AS end_us FROM intervals WHERE billed = 1 AND "
                "start_us < ? AND COALESCE(end_us, ?) > ?", (now_us, end, now_us, since)):
            start, stop = max(row["start_us"], since), min(row["end_us"], end)
            if stop > start:
                billed.setdefault(row["uid"], []).append((start, stop))
        out = []
        for row in self.conn.execute(f"SELECT {_POD_COLUMNS}, created_us, ended_us, phase FROM pods WHERE "
                                     "created_us < ? AND (ended_us IS NULL OR ended_us >= ?) ORDER BY created_us",
                                     (end, since)):
            spans = billed.get(row["uid"], [])
            out.append(PodUsage(
                record=_record(row), created=moment(row["created_us"]),
                ended=moment(row["ended_us"]) if row["ended_us"] is not None else None, phase=row["phase"],
                first_billed=moment(min(s for s, _ in spans)) if spans else None,
                billed_micros=sum(stop - start for start, stop in spans)))
        return out

    def prune(self, before_us: int) -> int:
        deleted: int = self.conn.execute("DELETE FROM pods WHERE ended_us IS NOT NULL AND ended_us < ?",
                                         (before_us,)).rowcount
        return deleted

    def row(self, uid: str) -> dict[str, Any] | None:
        found = self.conn.execute("SELECT * FROM pods WHERE uid = ?", (uid,)).fetchone()
        if found is None:
            return None
        out = dict(found)
        out["intervals"] = [dict(r) for r in self.conn.execute(
            "SELECT state, billed, start_us, end_us FROM intervals WHERE uid = ? ORDER BY id", (uid,))]
        return out

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")  # the write lock up front: no upgrade from a read lock to fail on
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:  # SQLite may have rolled back already (e.g. on a full disk)
                self.conn.execute("ROLLBACK")
            raise

    def _json_of(self, basis: PriceBasis) -> str:
        text = self._basis_json.get(basis)
        if text is None:
            if len(self._basis_json) >= _BASES_KEPT:
                self._basis_json.clear()
            text = self._basis_json[basis] = basis.to_json()
        return text

    def _close(self, uid: str, at_us: int) -> None:
        # A clock that stepped back must not make a negative interval.
        self.conn.execute("UPDATE intervals SET end_us = MAX(start_us, ?) WHERE uid = ? AND end_us IS NULL",
                          (at_us, uid))


_WRITES: dict[str, Callable[..., None]] = {
    "upsert_pod": LedgerRows.upsert_pod, "set_state": LedgerRows.set_state, "end_pods": LedgerRows.end_pods}


def _record(row: sqlite3.Row) -> PodRecord:
    identity = PodIdentity(
        namespace=row["namespace"], name=row["name"], uid=row["uid"], node=row["node"], provider=row["provider"],
        build=BuildRef(job=row["job"], build=row["build"], url=row["build_url"], source=row["build_source"]),
        labels=json.loads(row["labels"]))
    shape = BilledShape(cpu=Decimal(row["cpu"]), memory_gib=Decimal(row["memory_gib"]), gpu=row["gpu"],
                        gpu_type=row["gpu_type"], instance_type=row["instance_type"], spot=bool(row["spot"]),
                        zone=row["zone"], compute_category=row["compute_category"],
                        reported=bool(row["shape_reported"]))
    return PodRecord(identity=identity, shape=shape, basis=PriceBasis.from_json(row["price_basis"]),
                     instance_id=row["instance_id"])
