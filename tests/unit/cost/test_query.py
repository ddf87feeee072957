"""Report parameters from flags or a query string, with errors naming the bad one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vnode.cost.query import ReportQuery
from vnode.errors import Invalid

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_defaults_are_by_build_everything_until_now_as_a_table() -> None:
    query = ReportQuery.from_params({})
    assert (query.by, query.format, query.window(NOW)) == ("build", "table", (None, NOW))


@pytest.mark.parametrize(("text", "delta"), [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)),
                                             ("1h30m", timedelta(minutes=90)), ("2w", timedelta(weeks=2)),
                                             ("45s", timedelta(seconds=45))])
def test_since_takes_durations_before_now(text: str, delta: timedelta) -> None:
    assert ReportQuery.from_params({"since": text}).window(NOW)[0] == NOW - delta


def test_since_and_until_take_rfc3339_times() -> None:
    query = ReportQuery.from_params({"since": "2026-03-01T00:00:00Z", "until": "2026-03-02T06:00:00+02:00"})
    assert query.window(NOW) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, 4, tzinfo=UTC))


def test_until_is_clipped_at_now() -> None:
    assert ReportQuery.from_params({"until": "2030-01-01"}).window(NOW)[1] == NOW


def test_label_grouping_names_its_key() -> None:
    assert ReportQuery.from_params({"by": "label:team"}).label == "team"


@pytest.mark.parametrize(("params", "names"), [
    ({"by": "pod"}, "by"), ({"by": "label:"}, "by"), ({"format": "xml"}, "format"),
    ({"since": "yesterday"}, "since"), ({"until": "7x"}, "until"),
    ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since")])
def test_bad_parameters_are_invalid_and_named(params: dict[str, str], names: str) -> None:
    with pytest.raises(Invalid, match=names):
        ReportQuery.from_params(params)
