"""Decoding a /containerLogs query the way the kubelet does (v1.PodLogOptions decode, then validation)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vnode.kubelet.logs import DECODE_ERROR, INVALID_ERROR, LogQueryError, parse_log_options
from vnode.providers.streams import LogOptions

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def parse(query: str) -> LogOptions:
    pairs = [tuple(part.split("=", 1)) for part in query.split("&") if part]
    return parse_log_options(pairs, NOW)  # type: ignore[arg-type]


def test_no_query_is_the_whole_log() -> None:
    assert parse("") == LogOptions()


def test_every_option() -> None:
    options = parse("follow=true&previous=1&timestamps=True&tailLines=10&limitBytes=100&sinceSeconds=60")
    assert options == LogOptions(follow=True, previous=True, timestamps=True, tail_lines=10, limit_bytes=100,
                                 since_time=NOW - timedelta(seconds=60))


def test_since_time_is_rfc3339() -> None:
    assert parse("sinceTime=2026-11-25T11:00:00Z").since_time == datetime(2026, 11, 25, 11, tzinfo=UTC)


@pytest.mark.parametrize("value", ["false", "False", "0"])
def test_false_spellings(value: str) -> None:
    assert parse(f"follow={value}").follow is False


def test_any_other_bool_value_is_true_like_apimachinery() -> None:
    assert parse("follow=yes").follow is True


@pytest.mark.parametrize(("query", "tail"), [("tail=5", 5), ("tail=all", None), ("tail=all&tailLines=3", None)])
def test_legacy_tail_parameter(query: str, tail: int | None) -> None:
    assert parse(query).tail_lines == tail


@pytest.mark.parametrize("query", ["tailLines=x", "limitBytes=1.5", "sinceSeconds=soon", "sinceTime=yesterday"])
def test_undecodable_values_are_400(query: str) -> None:
    with pytest.raises(LogQueryError) as caught:
        parse(query)
    assert (caught.value.status, caught.value.text) == (400, DECODE_ERROR)


@pytest.mark.parametrize("query", ["tailLines=-1", "limitBytes=0", "sinceSeconds=0",
                                   "sinceSeconds=5&sinceTime=2026-11-25T11:00:00Z"])
def test_invalid_values_are_422(query: str) -> None:
    with pytest.raises(LogQueryError) as caught:
        parse(query)
    assert (caught.value.status, caught.value.text) == (422, INVALID_ERROR)
