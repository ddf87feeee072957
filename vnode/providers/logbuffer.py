"""`ContainerLog`: one container instance's output, kept in memory and served as the kubelet serves a log file.

It owns the lines (each with its write time and stream), the size bound (oldest lines go first, like a rotated
log) and the reading rules of `LogOptions`, which follow the kubelet's CRI log reader: `tail_lines` picks the last
N lines, then `since_time` drops older ones, then `timestamps` prefixes each line with its RFC3339Nano time, and
`limit_bytes` counts the prefixes too and may cut a line. A line written in pieces is readable at once (like a CRI
`P` record) and followers see the rest arrive without a second prefix. It must not know about pods or HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from vnode.clock import Clock
from vnode.providers.streams import LogOptions

LogStream = Literal["stdout", "stderr"]
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # the kubelet's default containerLogMaxSize
MAX_LINE_BYTES = 16 * 1024  # CRI runtimes split longer lines into partial records of this size
CHUNK_BYTES = 64 * 1024  # how much a reader gathers before it yields


def rfc3339_nano(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: the fraction's trailing zeros are trimmed, and a zero fraction is left out."""
    utc = moment.astimezone(UTC)
    fraction = f"{utc.microsecond:06d}000".rstrip("0")
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


@dataclass(frozen=True)
class _Line:
    line_id: int  # one id per line from its first piece on, so followers know what they already showed of it
    time: datetime
    stream: LogStream
    data: bytes
    continued: bool  # the rest of an over-long line: printed without a timestamp, as the kubelet does


@dataclass
class _Pending:
    line_id: int
    time: datetime
    continued: bool
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _Follower:
    """Where one reader is: the next committed line, and how much of each unfinished line it already showed."""

    cursor: int
    shown: dict[int, int]
    excluded: set[int]  # unfinished lines that started before the tail cut: never shown


class ContainerLog:
    def __init__(self, clock: Clock, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._clock = clock
        self._max_bytes = max_bytes
        self._lines: list[_Line] = []
        self._base = 0  # absolute index of self._lines[0]
        self._start = 0  # position in self._lines of the oldest kept line (dropped ones are compacted lazily)
        self._bytes = 0
        self._pending: dict[LogStream, _Pending] = {}
        self._ids = itertools.count()
        self._finished = False
        self._changed = asyncio.Event()

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def size_bytes(self) -> int:
        return self._bytes + sum(len(p.data) for p in self._pending.values())

    def append(self, data: bytes, stream: LogStream = "stdout") -> None:
        """Record output; ignored once the instance has finished."""
        if self._finished or not data:
            return
        now = self._clock.now()
        position = 0
        while position < len(data):
            end = data.find(b"\n", position)
            end = len(data) if end < 0 else end + 1
            self._add(stream, data[position:end], now)
            position = end
        self._wake()

    def finish(self) -> None:
        """The instance ended: unfinished lines stay as they are, followers stop after reading everything."""
        if self._finished:
            return
        for stream, pending in sorted(self._pending.items(), key=lambda item: item[1].line_id):
            self._commit(_Line(pending.line_id, pending.time, stream, bytes(pending.data), pending.continued))
        self._pending.clear()
        self._finished = True
        self._wake()

    async def read(self, options: LogOptions) -> AsyncGenerator[bytes, None]:
        """The log as `options` select it (`previous` is the caller's business: it picks the instance)."""
        backlog, follower = self._backlog(options.tail_lines)
        left = options.limit_bytes
        async with contextlib.aclosing(self._chunks(backlog, follower, options)) as chunks:
            async for chunk in chunks:
                if left is not None:
                    chunk = chunk[:left]
                    left -= len(chunk)
                yield chunk
                if left == 0:
                    return

    # Writing

    def _add(self, stream: LogStream, piece: bytes, now: datetime) -> None:
        pending = self._pending.pop(stream, None) or _Pending(next(self._ids), now, continued=False)
        pending.data += piece
        while len(pending.data) > MAX_LINE_BYTES:
            head = bytes(pending.data[:MAX_LINE_BYTES])
            self._commit(_Line(pending.line_id, pending.time, stream, head, pending.continued))
            pending = _Pending(next(self._ids), now, True, bytearray(pending.data[MAX_LINE_BYTES:]))
        if pending.data.endswith(b"\n"):
            self._commit(_Line(pending.line_id, pending.time, stream, bytes(pending.data), pending.continued))
        elif pending.data:
            self._pending[stream] = pending

    def _commit(self, line: _Line) -> None:
        self._lines.append(line)
        self._bytes += len(line.data)
        while self._bytes > self._max_bytes and len(self._lines) - self._start > 1:
            self._bytes -= len(self._lines[self._start].data)
            self._start += 1
        if self._start > 1024 and self._start * 2 > len(self._lines):
            del self._lines[: self._start]
            self._base += self._start
            self._start = 0

    def _wake(self) -> None:
        # Every waiting reader holds the old event; a fresh one is armed for the next change. No lost wake-ups:
        # readers check for new lines and pick up the event in one synchronous step.
        self._changed.set()
        self._changed = asyncio.Event()

    # Reading

    def _backlog(self, tail_lines: int | None) -> tuple[list[_Line], _Follower]:
        """What is there now (the last `tail_lines` lines, unfinished ones last), and where following goes on."""
        pending = [_Line(p.line_id, p.time, s, bytes(p.data), p.continued)
                   for s, p in sorted(self._pending.items(), key=lambda item: item[1].line_id)]
        lines = self._lines[self._start:] + pending
        kept = lines if tail_lines is None else lines[max(0, len(lines) - tail_lines):] if tail_lines else []
        kept_ids = {line.line_id for line in kept}
        follower = _Follower(cursor=self._base + len(self._lines),
                             shown={p.line_id: len(p.data) for p in pending if p.line_id in kept_ids},
                             excluded={p.line_id for p in pending if p.line_id not in kept_ids})
        return kept, follower

    async def _chunks(self, backlog: list[_Line], follower: _Follower, options: LogOptions,
                      ) -> AsyncGenerator[bytes, None]:
        for chunk in _gather(_render(line, 0, options) for line in backlog):
            yield chunk
        while options.follow:
            chunk = b"".join(self._news(follower, options))
            if chunk:
                yield chunk
            elif self._finished:
                return
            else:
                await self._changed.wait()

    def _news(self, follower: _Follower, options: LogOptions) -> Iterable[bytes]:
        follower.cursor = max(follower.cursor, self._base + self._start)  # lines dropped while the reader was slow
        gathered = 0
        while follower.cursor < self._base + len(self._lines) and gathered < CHUNK_BYTES:
            line = self._lines[follower.cursor - self._base]
            follower.cursor += 1
            if line.line_id in follower.excluded:
                follower.excluded.discard(line.line_id)
                continue
            text = _render(line, follower.shown.pop(line.line_id, 0), options)
            gathered += len(text)
            yield text
        if follower.cursor < self._base + len(self._lines):
            return
        for stream, pending in sorted(self._pending.items(), key=lambda item: item[1].line_id):
            done = follower.shown.get(pending.line_id, 0)
            if pending.line_id in follower.excluded or len(pending.data) <= done:
                continue
            follower.shown[pending.line_id] = len(pending.data)
            yield _render(_Line(pending.line_id, pending.time, stream, bytes(pending.data), pending.continued),
                          done, options)


def _render(line: _Line, skip: int, options: LogOptions) -> bytes:
    """The line as served, without its first `skip` bytes (already shown). The kubelet drops lines strictly older
    than sinceTime and prefixes only the start of a line."""
    if options.since_time is not None and line.time < options.since_time:
        return b""
    text = line.data[skip:]
    if options.timestamps and skip == 0 and not line.continued:
        return rfc3339_nano(line.time).encode() + b" " + text
    return text


def _gather(texts: Iterable[bytes]) -> Iterable[bytes]:
    """Join small pieces into chunks of about CHUNK_BYTES, so a long backlog is not sent line by line."""
    batch: list[bytes] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= CHUNK_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    if size:
        yield b"".join(batch)
