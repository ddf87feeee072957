"""Report grouping and every format, from ledger records built in memory."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

from vnode.cost.html_report import render_html
from vnode.cost.identity import BuildRef, PodIdentity
from vnode.cost.ledger_rows import PodRecord, PodUsage
from vnode.cost.pricing import PriceBasis
from vnode.cost.reports import Report, build_report, render_csv, render_json, render_table
from vnode.cost.shape import BilledShape

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CNY = PriceBasis(currency="CNY", source="eci-list:cn-hangzhou", vcpu_second=Decimal("0.000049"),
                 gib_second=Decimal("0.00000613"))
USD = PriceBasis(currency="USD", source="notional", vcpu_second=Decimal("0.0000077"), estimate=True)
SHAPE = BilledShape(cpu=Decimal(2), memory_gib=Decimal(4), reported=True)


def _usage(name: str, job: str, build: str, seconds: int, *, start_minute: int = 0, namespace: str = "ci",
           basis: PriceBasis = CNY, labels: dict[str, str] | None = None, running: bool = False) -> PodUsage:
    start = T0 + timedelta(minutes=start_minute)
    identity = PodIdentity(namespace=namespace, name=name, uid=f"uid-{name}", build=BuildRef(job=job, build=build),
                           labels=labels or {})
    return PodUsage(PodRecord(identity, SHAPE, basis), created=start, ended=None if running else
                    start + timedelta(seconds=seconds), phase="Succeeded", first_billed=start,
                    billed_micros=seconds * 1_000_000)


USAGES = [
    _usage("a1", "team/app", "1", 60, start_minute=0, labels={"team": "web"}),
    _usage("a1-b", "team/app", "1", 30, start_minute=1, labels={"team": "web"}),
    _usage("a2", "team/app", "2", 120, start_minute=10, namespace="ci-2", labels={"team": "web"}),
    _usage("l7", "lib", "7", 600, start_minute=5, running=True),
    _usage("x", "", "", 10, start_minute=20, basis=USD),
]


def _report(by: str) -> Report:
    return build_report(USAGES, by=by, since=T0, until=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))


def test_by_build_adds_every_pod_of_a_build_in_the_order_builds_ran() -> None:
    rows = _report("build").rows
    assert [(r.key, r.pods, r.billed_seconds) for r in rows] == [
        ("team/app #1", 2, Decimal(90)), ("lib #7", 1, Decimal(600)), ("team/app #2", 1, Decimal(120)),
        ("(none)", 1, Decimal(10))]
    assert rows[0].cost == 90 * Decimal("0.00012252")


def test_by_job_sorts_costliest_first_and_counts_builds() -> None:
    rows = _report("job").rows
    assert [(r.key, r.builds, r.pods) for r in rows] == [("lib", 1, 1), ("team/app", 2, 3), ("(none)", 0, 1)]


def test_by_namespace_and_by_label() -> None:
    assert {(r.key, r.currency): r.pods for r in _report("namespace").rows} == {
        ("ci", "CNY"): 3, ("ci", "USD"): 1, ("ci-2", "CNY"): 1}
    assert {(r.key, r.currency): r.pods for r in _report("label:team").rows} == {
        ("web", "CNY"): 3, ("(none)", "CNY"): 1, ("(none)", "USD"): 1}


def test_currencies_never_add_up_and_estimates_are_flagged() -> None:
    totals = {t.currency: t for t in _report("build").totals}
    assert totals["CNY"].cost == 810 * Decimal("0.00012252") and not totals["CNY"].estimate
    assert totals["USD"].cost == 10 * 2 * Decimal("0.0000077") and totals["USD"].estimate


def test_a_running_pod_leaves_its_row_open() -> None:
    row = next(r for r in _report("build").rows if r.key == "lib #7")
    assert row.last_end is None


def test_csv_parses_back_to_the_same_numbers() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(_report("build")))))
    assert Decimal(rows[0].pop("cost")) == 90 * Decimal("0.00012252")
    assert rows[0] == {"key": "team/app #1", "job": "team/app", "build": "1", "pods": "2", "builds": "1",
                       "billed_seconds": "90", "currency": "CNY",
                       "estimate": "false", "first_start": "2026-03-01T00:00:00Z",
                       "last_end": "2026-03-01T00:01:30Z"}


def test_json_parses_back_exactly_with_totals() -> None:
    document = json.loads(render_json(_report("job")), parse_float=Decimal)
    assert document["rows"][0]["cost"] == 600 * Decimal("0.00012252")
    assert document["rows"][0]["last_end"] == ""
    assert {t["currency"]: (t["cost"], t["estimate"]) for t in document["totals"]} == {
        "CNY": (810 * Decimal("0.00012252"), False), "USD": (Decimal("0.000154"), True)}
    assert (document["by"], document["since"]) == ("job", "2026-03-01T00:00:00Z")


def test_table_aligns_columns_and_ends_with_totals() -> None:
    lines = render_table(_report("build")).splitlines()
    assert lines[1].split() == ["BUILD", "PODS", "BILLED", "COST", "CURRENCY"]
    assert lines[2].split() == ["team/app", "#1", "2", "0:01:30", "0.011027", "CNY"]
    assert len({line.index("CNY") for line in lines[2:] if line.endswith("CNY")}) == 1
    assert lines[-2].split()[0] == "TOTAL" and lines[-1].startswith("* estimate")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: set[str] = set()
        self.void = {"meta", "br", "img", "input", "link", "rect", "line"}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)
        if tag not in self.void:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.void:
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def test_html_is_one_balanced_page_with_an_svg_and_nothing_external() -> None:
    page = render_html(_report("job"))
    tags = _Tags()
    tags.feed(page)
    assert not tags.open and {"svg", "rect", "table"} <= tags.seen
    assert "http://" not in page and "https://" not in page and "<script" not in page and "url(" not in page
    assert page.count("<rect") == 3  # one bar per build in the main currency (CNY)


def test_html_escapes_names_from_the_cluster() -> None:
    usage = _usage("evil", "<script>alert(1)</script>", "1", 5)
    page = render_html(build_report([usage], by="job", since=None, until=T0 + timedelta(hours=1), now=T0))
    assert "<script" not in page and "&lt;script&gt;" in page


def test_html_of_an_empty_window_still_has_its_chart() -> None:
    page = render_html(build_report([], by="build", since=T0, until=T0, now=T0))
    assert "<svg" in page and "No builds in this window" in page
