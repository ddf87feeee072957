"""The protocol-free side of interactive and streaming calls: exec, attach, logs, port-forward and usage stats.

The kubelet API adapts SPDY/3.1 and every WebSocket variant to these types; providers only ever see these, never a
wire format. Flow control is by awaiting: `ByteSink.write` returns once the client side has taken the bytes (or
buffered a bounded amount), so a slow reader slows the provider down instead of growing memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vnode.providers.base import PodRef


class StreamClosed(Exception):
    """The client side of a stream went away; a provider stops producing for it."""


class ByteSource(Protocol):
    async def read(self) -> bytes:
        """The next chunk of bytes; b'' once the client half-closed the stream (EOF), and on every later call."""
        ...


class ByteSink(Protocol):
    async def write(self, data: bytes) -> None:
        """Deliver `data`, waiting while the client is slow; raises StreamClosed once the client is gone."""
        ...


class ByteStream(ByteSource, ByteSink, Protocol):
    """Both directions of one forwarded connection (port-forward)."""

    async def close_write(self) -> None:
        """Half-close towards the client: the pod side will send nothing more."""
        ...


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


class ResizeQueue:
    """Terminal sizes from the client, newest wins: a burst of resizes never queues up behind a busy provider.

    The wire adapter `put`s sizes and `close`s it when the session ends; a provider iterates with `async for`.
    """

    def __init__(self) -> None:
        self._latest: TerminalSize | None = None
        self._closed = False
        self._changed = asyncio.Event()

    def put(self, size: TerminalSize) -> None:
        if not self._closed:
            self._latest = size
            self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    def __aiter__(self) -> AsyncIterator[TerminalSize]:
        return self._sizes()

    async def _sizes(self) -> AsyncIterator[TerminalSize]:
        while True:
            await self._changed.wait()
            self._changed.clear()
            size, self._latest = self._latest, None
            if size is not None:
                yield size
            if self._closed:
                return


@dataclass
class StreamIO:
    """The streams of one exec or attach session, as the client asked for them.

    `stdin` is None when the client sends no input; `stderr` is None with a tty (the terminal merges it into
    stdout, as a kubelet does). `resizes` yields terminal sizes while `tty` is set; it ends with the session.
    """

    stdin: ByteSource | None
    stdout: ByteSink | None
    stderr: ByteSink | None
    tty: bool
    resizes: ResizeQueue


@dataclass(frozen=True)
class LogOptions:
    """A container log request (v1.PodLogOptions after validation; sinceSeconds already turned into since_time)."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False  # prefix each line with its RFC 3339 (nanosecond) time and a space
    since_time: datetime | None = None  # only lines written at or after this time
    tail_lines: int | None = None  # only the last N lines (before limit_bytes applies)
    limit_bytes: int | None = None  # stop after this many bytes


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    start_time: datetime
    cpu_usage_core_nanoseconds: int  # cumulative CPU time
    memory_working_set_bytes: int
    cpu_usage_nano_cores: int | None = None  # recent average rate, cores x 1e9
    memory_usage_bytes: int | None = None
    memory_rss_bytes: int | None = None
    memory_limit_bytes: int | None = None  # gives availableBytes; None when the container has no limit
    rootfs_used_bytes: int | None = None
    logs_used_bytes: int | None = None


@dataclass(frozen=True)
class PodUsage:
    ref: PodRef
    start_time: datetime
    containers: tuple[ContainerUsage, ...]
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None


@dataclass(frozen=True)
class UsageSnapshot:
    """Resource usage of the node's running pods, measured at `time`."""

    time: datetime
    pods: tuple[PodUsage, ...]
