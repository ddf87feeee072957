"""The cost ledger: one SQLite file (WAL) of every pod the node ran, its billed shape and price basis, and the
intervals it spent in each backend state.

Owns the schema (versioned by `PRAGMA user_version`) and a single worker thread that does all SQLite work, so the
event loop never blocks. Writes (`upsert_pod`, `set_state`, `end_pod`) are queued and never raise: a failure is
logged, because the pod path must not break over accounting; `flush` waits for them. Queued writes are collected on
the event loop for up to `WRITE_WINDOW_SECONDS` and handed to the worker together, which commits them in one
transaction (as if each had its own: a failing one is logged and the others land): a burst of pods costs a few
commits and thread wake-ups, not three per pod. Every awaited call first hands over the writes queued before it, so
writes and calls run in the order they were made. An open interval has end NULL; readers clip it at "now". It must
not know about providers or Kubernetes beyond the records it is given.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from vnode.cost.ledger_rows import LedgerRows, OpenPod, PodRecord, PodUsage, Write, micros
from vnode.errors import ConfigError

__all__ = ["CostLedger", "OpenPod", "PodRecord", "PodUsage"]

log = logging.getLogger(__name__)
T = TypeVar("T")
SCHEMA_VERSION = 1
# How long queued writes wait for others to share their transaction. Each hand-over wakes the worker thread, which then
# competes with the event loop for the GIL; a 5,000-pod burst measured 3,350 hand-overs of ~5 writes without a window.
WRITE_WINDOW_SECONDS = 0.2
_SCHEMA = """
CREATE TABLE pods (
    uid TEXT PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, node TEXT NOT NULL, provider TEXT NOT NULL,
    instance_id TEXT NOT NULL, job TEXT NOT NULL, build TEXT NOT NULL, build_url TEXT NOT NULL,
    build_source TEXT NOT NULL, labels TEXT NOT NULL,
    cpu TEXT NOT NULL, memory_gib TEXT NOT NULL, gpu INTEGER NOT NULL, gpu_type TEXT NOT NULL,
    instance_type TEXT NOT NULL, spot INTEGER NOT NULL, zone TEXT NOT NULL, compute_category TEXT NOT NULL,
    shape_reported INTEGER NOT NULL, currency TEXT NOT NULL, price_basis TEXT NOT NULL, estimate INTEGER NOT NULL,
    created_us INTEGER NOT NULL, ended_us INTEGER, phase TEXT NOT NULL DEFAULT '', cost TEXT
);
CREATE INDEX pods_ended ON pods (ended_us);
CREATE TABLE intervals (
    id INTEGER PRIMARY KEY, uid TEXT NOT NULL REFERENCES pods (uid) ON DELETE CASCADE, state TEXT NOT NULL,
    billed INTEGER NOT NULL, start_us INTEGER NOT NULL, end_us INTEGER
);
CREATE INDEX intervals_uid ON intervals (uid, end_us);
CREATE INDEX intervals_start ON intervals (start_us);
"""


class CostLedger:
    """Open with `await CostLedger.open(path)`; close with `await ledger.aclose()`."""

    def __init__(self, path: Path, executor: ThreadPoolExecutor) -> None:
        self.path = path
        self._executor = executor
        self._rows: LedgerRows | None = None  # touched only on the worker thread
        self._closed = False
        self._pending: list[Write] = []  # queued writes not yet handed to the worker (event loop only)
        self._hand_over: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, path: Path, *, create: bool = True) -> CostLedger:
        """Open (and with `create`, create) the ledger; ConfigError when it is missing or from a newer vnode."""
        ledger = cls(path, ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnode-cost-ledger"))
        try:
            await ledger._call(ledger._connect, create)
        except BaseException:
            ledger._executor.shutdown(wait=False)
            raise
        return ledger

    async def aclose(self) -> None:
        """Finish queued writes, close the database and stop the worker thread. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._call(self._disconnect)
        finally:
            await asyncio.to_thread(self._executor.shutdown, wait=True)

    # Queued writes: in order, on the worker thread; failures are logged, never raised.

    def upsert_pod(self, record: PodRecord, at: datetime) -> None:
        """Insert the pod, or refresh its identity, shape and price basis (first-seen time and state are kept). An
        ended pod's record is final: it is left as it is."""
        self._post(("upsert_pod", (record, micros(at))))

    def set_state(self, uid: str, state: str, billed: bool, at: datetime) -> None:
        """Close the pod's open interval at `at` and open one in `state` (nothing when already in that state or
        when the pod has ended)."""
        self._post(("set_state", (uid, state, billed, micros(at))))

    def end_pod(self, uid: str, at: datetime, phase: str = "") -> None:
        """Close the open interval, mark the pod ended and store its final cost (once: an ended pod stays so)."""
        self._post(("end_pods", ((uid,), micros(at), phase)))

    async def flush(self) -> None:
        """Wait until every write queued so far is done."""
        await self._call(lambda: None)

    # Awaited calls.

    async def close_open_intervals(self, at: datetime, uids: Iterable[str] | None = None) -> int:
        """End pods found gone (all open ones, or those in `uids`) at `at`; returns how many were ended."""
        wanted = None if uids is None else list(uids)
        return await self._call(lambda: self._need().atomically(lambda rows: rows.end_open(micros(at), wanted)))

    async def open_pods(self) -> list[OpenPod]:
        """Pods not yet ended, with their billed time so far and the state they are in: to continue after a restart."""
        return await self._call(lambda: self._need().open_pods())

    async def usage(self, since: datetime | None, until: datetime, now: datetime) -> list[PodUsage]:
        """Every pod alive in [since, until), with billed time clipped to that window and to `now`."""
        start = None if since is None else micros(since)
        return await self._call(lambda: self._need().usage(start, micros(until), micros(now)))

    async def prune(self, ended_before: datetime) -> int:
        """Delete pods that ended before `ended_before` (retention); returns how many."""
        return await self._call(lambda: self._need().atomically(lambda rows: rows.prune(micros(ended_before))))

    async def pod(self, uid: str) -> dict[str, Any] | None:
        """The pod's stored row as a dict (for inspection and tests)."""
        return await self._call(lambda: self._need().row(uid))

    # Worker thread.

    def _connect(self, create: bool) -> None:
        if not create and not self.path.is_file():
            raise ConfigError(f"no cost ledger at {self.path} (cost.db_path, --db)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit at the driver: LedgerRows opens and commits its transactions itself (one per batch of writes).
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")  # `vnode cost report` reads while vnode writes
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # 512 KiB of page cache, not SQLite's 2 MiB: writes touch a few index pages per pod and reports scan
            # once; every MiB counts against vnode's RSS goal, and a miss is a read from the OS page cache.
            conn.execute("PRAGMA cache_size = -512")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(f"cost ledger {self.path} has schema version {version}, newer than this vnode's "
                                  f"{SCHEMA_VERSION}")
            if version == 0:
                if not create:
                    raise ConfigError(f"{self.path} is not a cost ledger")
                conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        except BaseException:
            conn.close()
            raise
        self._rows = LedgerRows(conn)

    def _disconnect(self) -> None:
        if self._rows is not None:
            self._rows.conn.close()
            self._rows = None

    def _need(self) -> LedgerRows:
        if self._rows is None:
            raise ConfigError(f"cost ledger {self.path} is closed")
        return self._rows

    def _apply(self, batch: list[Write]) -> None:
        rows = self._rows
        if rows is None:
            for what, _ in batch:
                log.error("cost ledger %s: %s failed: the ledger is closed", self.path, what)
            return
        try:
            rows.apply(batch, lambda what, error: log.error("cost ledger %s: %s failed: %s", self.path, what, error,
                                                            exc_info=error))
        except Exception:  # the transaction itself failed (e.g. a full disk): the whole batch is lost
            log.exception("cost ledger %s: %d queued writes failed", self.path, len(batch))

    # Event loop side.

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        self._hand_over_writes()  # the worker runs jobs in order: writes queued before this call come first
        result: T = await asyncio.wrap_future(self._executor.submit(work, *args))
        return result

    def _post(self, write: Write) -> None:
        if self._closed:
            log.error("cost ledger %s: %s after close: the write is lost", self.path, write[0])
            return
        self._pending.append(write)
        if self._hand_over is None:
            self._hand_over = asyncio.get_running_loop().call_later(WRITE_WINDOW_SECONDS, self._hand_over_writes)

    def _hand_over_writes(self) -> None:
        if self._hand_over is not None:
            self._hand_over.cancel()
            self._hand_over = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            self._executor.submit(self._apply, batch)
        except RuntimeError as exc:  # the worker has stopped: the writes are lost, the pod path goes on
            log.error("cost ledger %s: %d writes after close: %s", self.path, len(batch), exc)
