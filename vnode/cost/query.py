"""What a cost report asks for: the grouping, the time window and the format, parsed from CLI flags or the kubelet
API's query string (`/cost/report?by=build&since=7d`) with errors that say which parameter is wrong.

Pure parsing; it must not read the ledger. Relative times (`7d`) stay relative until `window(now)` resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from vnode.errors import Invalid

ReportFormat = Literal["table", "csv", "json", "html"]
FORMATS: tuple[ReportFormat, ...] = ("table", "csv", "json", "html")
GROUPINGS = ("build", "job", "namespace")
LABEL_PREFIX = "label:"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([wdhms])")
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[wdhms])+")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

TimeBound = datetime | timedelta  # a moment, or how long before now


@dataclass(frozen=True)
class ReportQuery:
    by: str = "build"  # build | job | namespace | label:KEY
    since: TimeBound | None = None  # None: from the first pod in the ledger
    until: TimeBound | None = None  # None: now
    format: ReportFormat = "table"

    def __post_init__(self) -> None:
        if self.by not in GROUPINGS and not (self.by.startswith(LABEL_PREFIX) and len(self.by) > len(LABEL_PREFIX)):
            raise Invalid(f"by: must be build, job, namespace or label:KEY, not {self.by!r}")
        if self.format not in FORMATS:
            raise Invalid(f"format: must be one of {', '.join(FORMATS)}, not {self.format!r}")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ReportQuery:
        """Parse `by`, `since`, `until` and `format` (other parameters are ignored); Invalid names the bad one."""
        since = parse_time_bound(params["since"], "since") if params.get("since") else None
        until = parse_time_bound(params["until"], "until") if params.get("until") else None
        fmt = params.get("format") or "table"
        if fmt not in FORMATS:
            raise Invalid(f"format: must be one of {', '.join(FORMATS)}, not {fmt!r}")
        query = cls(by=params.get("by") or "build", since=since, until=until, format=fmt)
        if isinstance(since, datetime) and isinstance(until, datetime) and since >= until:
            raise Invalid(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
        return query

    @property
    def label(self) -> str | None:
        """The label key of `by=label:KEY`."""
        return self.by[len(LABEL_PREFIX):] if self.by.startswith(LABEL_PREFIX) else None

    def window(self, now: datetime) -> tuple[datetime | None, datetime]:
        """(since, until) as moments; until never lies after `now` (nothing is billed in the future)."""
        since = now - self.since if isinstance(self.since, timedelta) else self.since
        until = now - self.until if isinstance(self.until, timedelta) else (self.until or now)
        until = min(until, now)
        if since is not None and since > until:
            raise Invalid(f"since ({since.isoformat()}) lies after until ({until.isoformat()})")
        return since, until


def parse_time_bound(text: str, name: str) -> TimeBound:
    """A duration before now (`7d`, `12h`, `1h30m`, `90s`, `2w`) or an RFC 3339 time (a date alone is midnight
    UTC; a time without an offset is UTC)."""
    text = text.strip()
    if _DURATION.fullmatch(text):
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
        return timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name}: {text!r} is neither a duration like 7d, 12h or 30m nor an RFC 3339 time like "
                      "2026-01-31T12:00:00Z") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
