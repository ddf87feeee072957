"""Exec and attach over SPDY/3.1: `CommandChannels` built from the streams a remote-command client opens.

It owns waiting for the client's streams, the resize reader, and the order in which a session ends. It must not
negotiate the protocol, write the HTTP upgrade or run the provider call: `streaming` and `remotecommand.run_session`
do that.

Upstream facts (kubelet cri/streaming `remotecommand/httpstream.go`, client-go `remotecommand/v2.go`..`v4.go`): the
client opens one stream per channel, told apart by the `streamtype` header (error, stdin, stdout, stderr, resize);
the server waits for the error stream, each requested std stream (no stderr with a tty) and, from v3 on, a resize
stream when there is a tty; resize carries JSON `{"Width":W,"Height":H}` values, one per line (client-go encodes them
with json.Encoder). The session ends with FIN on stdout and stderr, the status on the error stream and its FIN, then
GOAWAY: client-go copies stdout/stderr to EOF before it reads the error stream to EOF.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from vnode.kubelet.spdy.connection import SpdyConnection, SpdyStream
from vnode.kubelet.ws_exec import parse_terminal_size
from vnode.providers.streams import ResizeQueue, StreamClosed, StreamIO

log = logging.getLogger(__name__)

STREAM_TYPE_HEADER = "streamtype"
ERROR, STDIN, STDOUT, STDERR, RESIZE = "error", "stdin", "stdout", "stderr", "resize"
_RESIZE_PROTOCOLS = ("v3.", "v4.", "v5.")  # v1 and v2 have no resize stream
_MAX_RESIZE_LINE = 4096  # a terminal size is ~30 bytes of JSON; longer lines are dropped


def expected_stream_types(protocol: str, *, stdin: bool, stdout: bool, stderr: bool, tty: bool) -> frozenset[str]:
    """The streams a client of `protocol` opens for these options (the kubelet waits for exactly these)."""
    kinds = {ERROR}
    if stdin:
        kinds.add(STDIN)
    if stdout:
        kinds.add(STDOUT)
    if stderr and not tty:
        kinds.add(STDERR)
    if tty and protocol.startswith(_RESIZE_PROTOCOLS):
        kinds.add(RESIZE)
    return frozenset(kinds)


class SpdyCommandChannels:
    """`CommandChannels` for one exec/attach session on a SPDY connection; owns its resize reader task."""

    def __init__(self, conn: SpdyConnection, streams: dict[str, SpdyStream], *, tty: bool) -> None:
        self._conn = conn
        self._error = streams[ERROR]
        self._stdout = streams.get(STDOUT)
        self._stderr = streams.get(STDERR)
        self._resize = streams.get(RESIZE)
        self._io = StreamIO(stdin=streams.get(STDIN), stdout=self._stdout, stderr=self._stderr, tty=tty,
                            resizes=ResizeQueue())
        self._resize_task: asyncio.Task[None] | None = None

    @property
    def io(self) -> StreamIO:
        return self._io

    def start(self) -> None:
        """Start feeding `io.resizes` from the resize stream (if any); a second call does nothing."""
        if self._resize is None:
            self._io.resizes.close()
        elif self._resize_task is None:
            self._resize_task = asyncio.create_task(self._read_resizes(self._resize), name="spdy exec resize")

    async def finish(self, status: bytes | None) -> None:
        for stream in (self._stdout, self._stderr):
            if stream is not None:
                await stream.close_write()
        if status is not None:
            try:
                await self._error.write(status)
            except StreamClosed:
                log.debug("exec status not sent: the client is gone")
        await self._error.close_write()
        await self._conn.close()

    async def client_gone(self) -> None:
        await self._conn.closed.wait()

    async def aclose(self) -> None:
        """Stop the resize reader and close the connection (GOAWAY) if still open; safe to call more than once."""
        if self._resize_task is not None:
            self._resize_task.cancel()
            await asyncio.gather(self._resize_task, return_exceptions=True)
        self._io.resizes.close()
        await self._conn.close()

    async def __aenter__(self) -> SpdyCommandChannels:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _read_resizes(self, stream: SpdyStream) -> None:
        pending = b""
        try:
            while chunk := await stream.read():
                *lines, pending = (pending + chunk).split(b"\n")
                if len(pending) > _MAX_RESIZE_LINE:
                    log.debug("dropping an over-long resize message")
                    pending = b""
                for line in lines:
                    self._resize_line(line)
            self._resize_line(pending)  # Go's decoder also takes a last value without a newline
        finally:
            self._io.resizes.close()

    def _resize_line(self, line: bytes) -> None:
        if not line.strip():
            return
        size = parse_terminal_size(line)
        if size is None:
            log.debug("ignoring a malformed resize message")
        else:
            self._io.resizes.put(size)


async def open_command_channels(
    conn: SpdyConnection, *, protocol: str, stdin: bool, stdout: bool, stderr: bool, tty: bool,
    creation_timeout_seconds: float,
) -> SpdyCommandChannels:
    """Accept the client's streams until every expected one is there, then return the started channels.

    Raises TimeoutError when they do not all arrive within `creation_timeout_seconds`, and
    `spdy.ConnectionClosed` when the connection ends first; the caller closes the connection either way. A stream of
    an unknown or unexpected type, or a second stream of one type, is reset.
    """
    expected = expected_stream_types(protocol, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    streams: dict[str, SpdyStream] = {}
    async with asyncio.timeout(creation_timeout_seconds):
        while len(streams) < len(expected):
            stream = await conn.accept_stream()
            kind = stream.headers.get(STREAM_TYPE_HEADER, "")
            if kind not in expected or kind in streams:
                log.debug("resetting unexpected SPDY stream %d of type %r", stream.id, kind)
                stream.reset()
                continue
            streams[kind] = stream
    channels = SpdyCommandChannels(conn, streams, tty=tty)
    channels.start()
    return channels
