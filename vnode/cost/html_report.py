"""The HTML cost report: one self-contained page a team lead can read at a glance: totals, an inline SVG chart of
cost per build over time (coloured by job), the top jobs, and the rows of the requested grouping.

No script, no external stylesheet, font or image, no links out: it must open from a file or an e-mail attachment
exactly as it was generated. Every text from the ledger is HTML-escaped. Reads a `reports.Report`; computes nothing
beyond layout.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vnode.cost.reports import Report, ReportRow

_WIDTH, _HEIGHT, _LEFT, _RIGHT, _TOP, _BOTTOM = 900, 300, 80, 20, 16, 40
_PALETTE = ("#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04")
_OTHER = "#9ca3af"
_TOP_JOBS = 10
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:960px;color:#111827}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}.sub{color:#6b7280;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-top:16px}.card{border:1px solid #e5e7eb;border-radius:8px;
padding:10px 16px;min-width:140px}.card b{display:block;font-size:20px}.card span{color:#6b7280;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;
text-align:left}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.bar{background:#dbeafe;height:10px}
.legend{font-size:12px;color:#374151}.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
svg text{font-size:11px;fill:#4b5563}.note{color:#6b7280;font-size:12px;margin-top:8px}
"""


def render_html(report: Report) -> str:
    currency = _main_currency(report)
    builds = [b for b in report.builds if b.currency == currency]
    colours = _colours([j for j in report.jobs if j.currency == currency])
    window = f"{_when(report.since) if report.since else 'the first pod'} to {_when(report.until)}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>vnode cost report: {escape(window)}</title><style>{_STYLE}</style></head><body>",
        "<h1>Build cost report</h1>",
        f'<div class="sub">{escape(window)} · generated {escape(_when(report.generated_at))} (UTC)</div>',
        _cards(report), f"<h2>Cost per build over time ({escape(currency or 'no data')})</h2>",
        _chart(builds, colours, currency), _legend(colours), "<h2>Top jobs</h2>",
        _table(("Job", "Builds", "Pods", "Billed", "Cost", "Share"), _job_rows(report.jobs)),
        f"<h2>By {escape(report.by)}</h2>",
        _table((report.by.capitalize(), "Pods", "Billed", "Cost", "Currency"), [
            [escape(r.key), str(r.pods), _duration(r.billed_seconds), _money(r), escape(r.currency)]
            for r in report.rows]),
    ]
    if any(t.estimate for t in report.totals):
        parts.append('<p class="note">* estimate: a notional rate (local Docker or mock runs) or an assumed price '
                     "(spot, GPU share, an instance type missing from the price table). ECI's bill may differ by "
                     "discounts, savings plans and coupons.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _main_currency(report: Report) -> str:
    return max(report.totals, key=lambda t: (t.pods, t.currency)).currency if report.totals else ""


def _colours(jobs: list[ReportRow]) -> dict[str, str]:
    return {job.key: colour for job, colour in zip(jobs, _PALETTE, strict=False)}


def _cards(report: Report) -> str:
    cards = []
    for total in report.totals:
        cards.append(f'<div class="card"><b>{_money(total)} {escape(total.currency)}</b><span>total cost</span></div>')
    builds = sum(t.builds for t in report.totals)
    pods = sum(t.pods for t in report.totals)
    seconds = sum((t.billed_seconds for t in report.totals), Decimal(0))
    for value, label in ((str(builds), "builds"), (str(pods), "pods"), (_duration(seconds), "billed time")):
        cards.append(f'<div class="card"><b>{value}</b><span>{label}</span></div>')
    return '<div class="cards">' + "".join(cards) + "</div>"


def _chart(builds: list[ReportRow], colours: dict[str, str], currency: str) -> str:
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    out = [f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="100%" role="img" aria-label="cost per build over time">']
    dated = [b for b in builds if b.first_start is not None]
    if not dated:
        out.append(f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle">No builds in this window</text>')
        return "".join(out) + "</svg>"
    start = min(b.first_start for b in dated if b.first_start)
    span = max(((b.first_start - start).total_seconds() for b in dated if b.first_start), default=0.0) or 3600.0
    top = max((b.cost for b in dated), default=Decimal(0)) or Decimal(1)
    for step in range(5):  # horizontal grid and the cost axis
        y = _TOP + plot_h - plot_h * step / 4
        out.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_short(top * step / 4)}</text>')
    for step in range(5):  # the time axis
        moment = start.timestamp() + span * step / 4
        x = _LEFT + plot_w * step / 4
        label = datetime.fromtimestamp(moment, start.tzinfo).strftime("%m-%d %H:%M")
        anchor = "end" if step == 4 else "middle"  # the last label would run off the right edge
        out.append(f'<text x="{x:.1f}" y="{_HEIGHT - 14}" text-anchor="{anchor}">{label}</text>')
    bar = max(2.0, min(18.0, plot_w / len(dated) * 0.6))
    for build in dated:
        assert build.first_start is not None
        x = _LEFT + plot_w * (build.first_start - start).total_seconds() / span - bar / 2
        height = max(1.0, float(build.cost / top) * plot_h)
        tip = f"{build.key}: {_money(build)} {currency}, {_when(build.first_start)}"
        out.append(f'<rect x="{max(x, _LEFT - bar / 2):.1f}" y="{_TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                   f'height="{height:.1f}" fill="{colours.get(build.job, _OTHER)}"><title>{escape(tip)}</title>'
                   "</rect>")
    return "".join(out) + "</svg>"


def _legend(colours: dict[str, str]) -> str:
    items = "".join(f'<i style="background:{c}"></i>{escape(job)}' for job, c in colours.items())
    return f'<div class="legend">{items}<i style="background:{_OTHER}"></i>other jobs</div>'


def _job_rows(jobs: tuple[ReportRow, ...]) -> list[list[str]]:
    rows = []
    for job in jobs[:_TOP_JOBS]:
        total = sum((j.cost for j in jobs if j.currency == job.currency), Decimal(0)) or Decimal(1)
        share = float(job.cost / total) * 100
        rows.append([escape(job.key), str(job.builds), str(job.pods), _duration(job.billed_seconds),
                     f"{_money(job)} {escape(job.currency)}",
                     f'<div class="bar" style="width:{share:.0f}%"></div>{share:.0f}%'])
    return rows


def _table(heads: tuple[str, ...], rows: list[list[str]]) -> str:
    numeric = {i for i, h in enumerate(heads) if h in ("Builds", "Pods", "Billed", "Cost")}
    head = "".join(f'<th class="n">{h}</th>' if i in numeric else f"<th>{escape(h)}</th>" for i, h in enumerate(heads))
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>no pods</td></tr>'}</tbody></table>"


def _money(row: ReportRow) -> str:
    rounded = row.cost.quantize(Decimal("0.000001"))
    return f"{rounded}" + ("*" if row.estimate else "")


def _short(value: Decimal) -> str:
    return f"{float(value):.4g}"


def _duration(seconds: Decimal) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""
