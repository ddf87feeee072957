"""Reading ECI's timestamped log answers and following a log by overlapping polls without losing or repeating
a line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from vnode.providers.eci.logs import FollowState, LogLine, parse_lines
from vnode.providers.logbuffer import rfc3339_nano

T0 = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)


def stamped(*lines: tuple[datetime, str]) -> bytes:
    return b"".join(f"{rfc3339_nano(t)} {text}\n".encode() for t, text in lines)


def texts(lines: list[LogLine]) -> list[bytes]:
    return [line.text for line in lines]


def test_a_nanosecond_timestamp_parses_to_microseconds() -> None:
    [line] = parse_lines(b"2026-03-01T12:00:00.123456789Z hello\n")
    assert line.stamp == "2026-03-01T12:00:00.123456789Z" and line.text == b"hello\n"
    assert line.time == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_line_without_a_timestamp_keeps_the_time_before_it() -> None:
    first, second = parse_lines(stamped((T0, "one")) + b"no stamp here\n")
    assert (second.stamp, second.time, second.text) == ("", first.time, b"no stamp here\n")


def test_the_last_line_may_lack_its_newline() -> None:
    [line] = parse_lines(f"{rfc3339_nano(T0)} partial".encode())
    assert line.text == b"partial"


def test_render_strips_or_keeps_the_timestamp() -> None:
    [line] = parse_lines(stamped((T0, "x")))
    assert line.render(False) == b"x\n" and line.render(True) == f"{rfc3339_nano(T0)} x\n".encode()


def test_an_overlapping_poll_shows_only_the_new_lines() -> None:
    state = FollowState(None)
    a, b, c = (T0, "a"), (T0 + timedelta(milliseconds=300), "b"), (T0 + timedelta(milliseconds=600), "c")
    assert texts(state.fresh(parse_lines(stamped(a, b)))) == [b"a\n", b"b\n"]
    assert texts(state.fresh(parse_lines(stamped(a, b, c)))) == [b"c\n"]


def test_the_same_text_at_another_time_is_a_new_line() -> None:
    state = FollowState(None)
    state.fresh(parse_lines(stamped((T0, "tick"))))
    assert texts(state.fresh(parse_lines(stamped((T0, "tick"), (T0 + timedelta(microseconds=1), "tick"))))) == [
        b"tick\n"]


def test_identical_records_are_counted_not_merged() -> None:
    state = FollowState(None)
    state.fresh(parse_lines(stamped((T0, "same"), (T0, "same"))))
    assert texts(state.fresh(parse_lines(stamped((T0, "same"), (T0, "same"), (T0, "same"))))) == [b"same\n"]


def test_the_next_window_starts_at_the_newest_whole_second() -> None:
    state = FollowState(None)
    state.fresh(parse_lines(stamped((T0, "a"), (T0 + timedelta(seconds=2), "b"))))
    assert state.window_start() == (T0 + timedelta(seconds=2)).replace(microsecond=0)


def test_since_time_filters_within_the_second() -> None:
    state = FollowState(T0 + timedelta(milliseconds=100))
    assert state.window_start() == T0.replace(microsecond=0)
    early, late = (T0, "early"), (T0 + timedelta(milliseconds=200), "late")
    assert texts(state.fresh(parse_lines(stamped(early, late)))) == [b"late\n"]


def test_lines_older_than_the_window_are_not_shown_again() -> None:
    state = FollowState(None)
    old, new = (T0, "old"), (T0 + timedelta(seconds=5), "new")
    state.fresh(parse_lines(stamped(old, new)))
    assert state.fresh(parse_lines(stamped(old, new))) == []  # a server that ignored StartTime


# A log as (milliseconds after T0, text), appended in time order; polls see a growing prefix of it.
_logs = st.lists(st.tuples(st.integers(0, 4000), st.sampled_from(["a", "b", "a b", ""])), max_size=40).map(
    lambda lines: sorted(lines, key=lambda line: line[0]))


@given(_logs, st.lists(st.integers(0, 40), max_size=8))
def test_following_by_windows_shows_every_line_exactly_once(log: list[tuple[int, str]], cuts: list[int]) -> None:
    lines = [(T0 + timedelta(milliseconds=ms), text) for ms, text in log]
    state = FollowState(None)
    shown: list[bytes] = []
    for visible in [*sorted(cuts), len(lines)]:
        start = state.window_start()
        answer = [line for line in lines[:visible] if start is None or line[0] >= start]
        shown += texts(state.fresh(parse_lines(stamped(*answer))))
    assert shown == [f"{text}\n".encode() for _, text in lines]
