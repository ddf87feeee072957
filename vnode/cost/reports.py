"""Cost reports: pods from the ledger grouped by build, job, namespace or a label, rendered as an aligned table,
CSV, JSON or one self-contained HTML page (`html_report`).

`render_report` is the one entry point for `vnode cost report` and the kubelet API's `/cost/report`. Amounts are
exact until presented: JSON and CSV carry 12 decimal places, the table 6. A row per (group, currency): prices of
one ledger may be in several currencies, which never add up. Must not write to the ledger.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from vnode.clock import Clock, SystemClock, rfc3339
from vnode.cost.html_report import render_html
from vnode.cost.ledger import CostLedger, PodUsage
from vnode.cost.query import ReportFormat, ReportQuery

NONE_KEY = "(none)"
CONTENT_TYPES: dict[str, str] = {"table": "text/plain; charset=utf-8", "csv": "text/csv; charset=utf-8",
                                 "json": "application/json", "html": "text/html; charset=utf-8"}
CSV_COLUMNS = ("key", "job", "build", "pods", "builds", "billed_seconds", "cost", "currency", "estimate",
               "first_start", "last_end")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ESTIMATE_NOTE = "* estimate: a notional rate (Docker, mock) or an assumed price (spot, GPU share, unknown type)"


@dataclass(frozen=True)
class ReportRow:
    key: str
    currency: str
    pods: int
    builds: int
    billed_seconds: Decimal
    cost: Decimal
    estimate: bool
    first_start: datetime | None
    last_end: datetime | None  # None while a pod of the row still runs
    job: str = ""
    build: str = ""


@dataclass(frozen=True)
class Report:
    by: str
    since: datetime | None
    until: datetime
    generated_at: datetime
    rows: tuple[ReportRow, ...]
    totals: tuple[ReportRow, ...]  # one per currency, key "TOTAL"
    builds: tuple[ReportRow, ...]  # always by build, oldest first: the HTML chart
    jobs: tuple[ReportRow, ...]  # always by job, costliest first: the HTML top jobs


async def render_report(ledger: CostLedger, query: ReportQuery, fmt: ReportFormat | None = None, *,
                        clock: Clock | None = None) -> tuple[str, bytes]:
    """(content type, body) of the report `query` asks for, in `fmt` (default: the query's format)."""
    now = (clock or SystemClock()).now()
    since, until = query.window(now)
    report = build_report(await ledger.usage(since, until, now), by=query.by, since=since, until=until, now=now)
    chosen = fmt or query.format
    body = {"table": render_table, "csv": render_csv, "json": render_json, "html": render_html}[chosen](report)
    return CONTENT_TYPES[chosen], body.encode()


def build_report(usages: Sequence[PodUsage], *, by: str, since: datetime | None, until: datetime,
                 now: datetime) -> Report:
    builds = group(usages, "build")
    return Report(by=by, since=since, until=until, generated_at=now, rows=tuple(group(usages, by)),
                  totals=tuple(_merge("TOTAL", c, [u for u in usages if u.record.basis.currency == c])
                               for c in sorted({u.record.basis.currency for u in usages})),
                  builds=tuple(builds), jobs=tuple(group(usages, "job")))


def key_of(usage: PodUsage, by: str) -> str:
    identity = usage.record.identity
    job, build = identity.build.job, identity.build.build
    if by == "build":
        return f"{job} #{build}" if job and build else (build or NONE_KEY)
    if by == "job":
        return job or NONE_KEY
    if by == "namespace":
        return identity.namespace or NONE_KEY
    return identity.labels.get(by.removeprefix("label:"), NONE_KEY)


def group(usages: Iterable[PodUsage], by: str) -> list[ReportRow]:
    groups: dict[tuple[str, str], list[PodUsage]] = {}
    for usage in usages:
        groups.setdefault((key_of(usage, by), usage.record.basis.currency), []).append(usage)
    rows = [_merge(key, currency, members) for (key, currency), members in groups.items()]
    if by == "build":  # builds read best in the order they ran
        return sorted(rows, key=lambda r: (r.first_start or _EPOCH, r.key))
    return sorted(rows, key=lambda r: (-r.cost, r.key))


def _merge(key: str, currency: str, members: Sequence[PodUsage]) -> ReportRow:
    starts = [u.first_billed or u.created for u in members]
    ends = [u.ended for u in members]
    jobs = {u.record.identity.build.job for u in members}
    builds = {(u.record.identity.build.job, u.record.identity.build.build) for u in members
              if u.record.identity.build.build}
    return ReportRow(
        key=key, currency=currency, pods=len(members), builds=len(builds),
        billed_seconds=sum((u.billed_seconds for u in members), Decimal(0)),
        cost=sum((u.cost for u in members), Decimal(0)), estimate=any(u.record.basis.estimate for u in members),
        first_start=min(starts) if starts else None,
        last_end=None if any(e is None for e in ends) or not ends else max(e for e in ends if e is not None),
        job=jobs.pop() if len(jobs) == 1 else "", build=builds.pop()[1] if len(builds) == 1 else "")


def amount(value: Decimal, places: int = 12) -> str:
    """A plain decimal string rounded half-even to `places` (12 for data, 6 for people), trailing zeros dropped."""
    rounding = ROUND_HALF_EVEN if places > 6 else ROUND_HALF_UP
    text = format(value.quantize(Decimal(1).scaleb(-places), rounding=rounding), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _time(moment: datetime | None) -> str:
    return rfc3339(moment) if moment is not None else ""


def _duration(seconds: Decimal) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def render_table(report: Report) -> str:
    heading = {"build": "BUILD", "job": "JOB", "namespace": "NAMESPACE"}.get(report.by, report.by.upper())
    window = f"{_time(report.since) or 'the beginning'} to {_time(report.until)}"
    lines = [[heading, "PODS", "BILLED", "COST", "CURRENCY"]]
    for row in (*report.rows, *report.totals):
        lines.append([row.key, str(row.pods), _duration(row.billed_seconds),
                      amount(row.cost, 6) + ("*" if row.estimate else ""), row.currency])
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    right = (False, True, True, True, False)
    out = [f"Cost by {report.by}, {window}"]
    for index, line in enumerate(lines):
        if index == len(report.rows) + 1 and report.totals:
            out.append("  ".join("-" * w for w in widths))
        out.append("  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(line, widths, right, strict=True))
                   .rstrip())
    if any(row.estimate for row in report.totals):
        out.append(ESTIMATE_NOTE)
    return "\n".join(out) + "\n"


def _record(row: ReportRow) -> dict[str, Any]:
    return {"key": row.key, "job": row.job, "build": row.build, "pods": row.pods, "builds": row.builds,
            "billed_seconds": row.billed_seconds, "cost": row.cost, "currency": row.currency,
            "estimate": row.estimate, "first_start": _time(row.first_start), "last_end": _time(row.last_end)}


def render_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        record = _record(row)
        writer.writerow([amount(v) if isinstance(v, Decimal) else str(v).lower() if isinstance(v, bool) else v
                         for v in (record[c] for c in CSV_COLUMNS)])
    return out.getvalue()


def render_json(report: Report) -> str:
    """JSON with amounts as exact numbers (12 decimal places; read them with `parse_float=Decimal`)."""
    document = {"by": report.by, "since": _time(report.since) or None, "until": _time(report.until),
                "generated_at": _time(report.generated_at), "rows": [_record(r) for r in report.rows],
                "totals": [{k: v for k, v in _record(t).items() if k not in ("key", "job", "build")}
                           for t in report.totals]}
    return _json(document) + "\n"


def _json(value: Any) -> str:
    # json.dumps would turn Decimals into floats; amounts must reach the reader digit for digit.
    if isinstance(value, Decimal):
        return amount(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    return json.dumps(value)
