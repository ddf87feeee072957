"""ContainerLog: every LogOptions field read as the kubelet reads a CRI log, on a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from vnode.clock import ManualClock
from vnode.providers.logbuffer import MAX_LINE_BYTES, ContainerLog, rfc3339_nano
from vnode.providers.streams import LogOptions

START = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
STAMP = re.compile(rb"^(\S+) (.*)$")


async def read_all(log: ContainerLog, **options: object) -> bytes:
    return b"".join([chunk async for chunk in log.read(LogOptions(**options))])  # type: ignore[arg-type]


async def timed_log() -> tuple[ContainerLog, ManualClock]:
    """Four lines written one second apart, at START, START+1s, START+2s, START+3s."""
    clock = ManualClock(START)
    log = ContainerLog(clock)
    for n in range(4):
        log.append(f"line {n}\n".encode())
        await clock.advance(1)
    return log, clock


async def test_reads_every_line_of_both_streams_in_write_order() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"out 1\n")
    log.append(b"err 1\nerr 2\n", stream="stderr")
    log.append(b"out 2\n")
    assert await read_all(log) == b"out 1\nerr 1\nerr 2\nout 2\n"


async def test_a_partial_line_is_readable_and_joins_its_rest() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"abc")
    assert await read_all(log) == b"abc"
    log.append(b"def\nnext")
    assert await read_all(log, timestamps=True) == (
        f"{rfc3339_nano(START)} abcdef\n{rfc3339_nano(START)} next".encode())


async def test_timestamps_are_rfc3339_nano_in_utc() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"hello\n")
    assert await read_all(log, timestamps=True) == b"2026-11-25T10:00:00.123456Z hello\n"


def test_rfc3339_nano_trims_zeros_like_go() -> None:
    assert rfc3339_nano(datetime(2026, 11, 25, 10, 0, 0, 120000, tzinfo=UTC)) == "2026-11-25T10:00:00.12Z"
    assert rfc3339_nano(datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)) == "2026-11-25T10:00:00Z"
    plus_two = datetime(2026, 11, 25, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339_nano(plus_two) == "2026-11-25T10:00:00.000005Z"


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1)))
def test_rfc3339_nano_round_trips_and_never_ends_in_a_zero_fraction_digit(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC)
    text = rfc3339_nano(moment)
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == moment
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", text), text


async def test_since_time_keeps_lines_written_at_or_after_it() -> None:
    log, _ = await timed_log()
    assert await read_all(log, since_time=START + timedelta(seconds=2)) == b"line 2\nline 3\n"


async def test_tail_lines_keeps_the_last_n() -> None:
    log, _ = await timed_log()
    assert await read_all(log, tail_lines=2) == b"line 2\nline 3\n"
    assert await read_all(log, tail_lines=0) == b""
    assert await read_all(log, tail_lines=10) == b"line 0\nline 1\nline 2\nline 3\n"


async def test_tail_and_since_combined_keep_the_newer_lines_of_the_tail() -> None:
    log, _ = await timed_log()
    since = START + timedelta(seconds=2)
    assert await read_all(log, tail_lines=3, since_time=since) == b"line 2\nline 3\n"
    assert await read_all(log, tail_lines=1, since_time=START) == b"line 3\n"


async def test_limit_bytes_cuts_mid_line() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"hello\nworld\n")
    assert await read_all(log, limit_bytes=8) == b"hello\nwo"


async def test_limit_bytes_counts_the_timestamp_prefix() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"hello\n")
    assert await read_all(log, limit_bytes=10, timestamps=True) == b"2026-11-25"


async def test_follow_stops_at_the_limit_while_the_log_goes_on() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"abc\n")
    reader = log.read(LogOptions(follow=True, limit_bytes=6))
    assert await anext(reader) == b"abc\n"
    log.append(b"defgh\n")
    assert await anext(reader) == b"de"
    assert await anext(reader, None) is None


async def test_follow_yields_new_lines_until_finish() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"backlog\n")
    reader = log.read(LogOptions(follow=True))
    assert await anext(reader) == b"backlog\n"
    waiting = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0)
    assert not waiting.done()
    log.append(b"new\n")
    assert await waiting == b"new\n"
    log.finish()
    assert await anext(reader, None) is None


async def test_follow_shows_a_line_written_in_pieces_with_one_timestamp() -> None:
    log = ContainerLog(ManualClock(START))
    reader = log.read(LogOptions(follow=True, timestamps=True))
    log.append(b"ab")
    assert await anext(reader) == b"2026-11-25T10:00:00.123456Z ab"
    log.append(b"c\n")
    assert await anext(reader) == b"c\n"
    await reader.aclose()


async def test_finish_keeps_an_unfinished_line_and_ends_followers() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"no newline")
    log.finish()
    log.append(b"after the end\n")
    assert await read_all(log, follow=True) == b"no newline"


async def test_oldest_lines_go_when_the_log_is_full() -> None:
    log = ContainerLog(ManualClock(START), max_bytes=14)
    for n in range(5):
        log.append(f"line{n}\n".encode())
    assert await read_all(log) == b"line3\nline4\n"
    assert log.size_bytes == 12


async def test_an_over_long_line_is_split_without_a_second_timestamp() -> None:
    log = ContainerLog(ManualClock(START))
    log.append(b"x" * (MAX_LINE_BYTES * 2 + 10) + b"\n")
    text = await read_all(log, timestamps=True)
    assert text == f"{rfc3339_nano(START)} ".encode() + b"x" * (MAX_LINE_BYTES * 2 + 10) + b"\n"


@given(bursts=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3), st.booleans()), min_size=1, max_size=20),
       reader_yields=st.integers(0, 3))
async def test_a_follower_racing_the_writer_sees_every_byte_once_in_order(
        bursts: list[tuple[int, int, bool]], reader_yields: int) -> None:
    log = ContainerLog(ManualClock(START))
    expected = bytearray()
    received = bytearray()

    async def consume() -> None:
        async with contextlib.aclosing(log.read(LogOptions(follow=True))) as chunks:
            async for chunk in chunks:
                received.extend(chunk)
                for _ in range(reader_yields):
                    await asyncio.sleep(0)  # a slow reader: the writer gets ahead

    consumer = asyncio.create_task(consume())
    number = 0
    for lines, yields, split in bursts:
        data = b"".join(f"line {number + i}\n".encode() for i in range(lines))
        number += lines
        pieces = [data[: len(data) // 2], data[len(data) // 2:]] if split else [data]
        for piece in pieces:  # a split burst leaves a partial line pending between the two appends
            log.append(piece)
            expected.extend(piece)
            for _ in range(yields):
                await asyncio.sleep(0)
    log.finish()
    await asyncio.wait_for(consumer, 10)
    assert bytes(received) == bytes(expected)
