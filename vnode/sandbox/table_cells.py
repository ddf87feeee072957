"""The cell values and column definitions kube-apiserver's printers share: ages, names, field look-ups.

apimachinery's duration.HumanDuration and printers' translateTimestampSince, plus safe readers of JSON objects that
return "" or [] for anything absent or of another type. Used by `tables.py` and `tables_workloads.py`; formats only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

Cell = str | int
Printer = Callable[[Mapping[str, Any], datetime], list[Cell]]


def human_duration(elapsed: timedelta) -> str:
    """duration.HumanDuration: coarser as it grows, e.g. 5s, 2m30s, 10m, 3h5m, 2d3h, 90d, 2y."""
    seconds = int(elapsed.total_seconds())  # truncated toward zero like Go's int(d.Seconds())
    # Up to two seconds in the future is clock skew and reads as now; further is invalid.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def since(when: datetime | None, now: datetime) -> str:
    """translateTimestampSince: a zero (absent) timestamp prints as <unknown>."""
    if when is None:
        return "<unknown>"
    return human_duration((now if now.tzinfo else now.replace(tzinfo=UTC)) - when)


def age(value: Any, now: datetime) -> str:
    return since(parse_time(value), now)


def dig(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def text(obj: Any, *path: str) -> str:
    value = dig(obj, *path)
    return "" if value is None else str(value)


def mappings(obj: Any, *path: str) -> list[Any]:
    value = dig(obj, *path)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def column(name: str, description: str, type_: str = "string", priority: int = 0,
         fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


NAME = column("Name", "Name must be unique within a namespace.", fmt="name")
AGE = column("Age", "CreationTimestamp is the server time when this object was created.")


def name_of(obj: Mapping[str, Any]) -> str:
    return text(obj, "metadata", "name")


def age_of(obj: Mapping[str, Any], now: datetime) -> str:
    return age(dig(obj, "metadata", "creationTimestamp"), now)
