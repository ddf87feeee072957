"""A server-side SPDY/3.1 session as client-go's spdystream peer expects it: accept the streams the client opens,
carry their data both ways, answer pings, and end cleanly or on misbehaviour.

It owns the session's state (streams, ids, idle deadline), the one place frames are written (so the header
compressor and frame order stay consistent) and inbound backpressure: each stream buffers at most
`stream_buffer_bytes` (in an `inbound.InputBuffer`), and the read loop waits (so TCP pushes back) while a stream is
full. It must not know what the streams mean (exec, port-forward) nor write the HTTP upgrade; it starts on the first
SPDY byte.

Upstream facts (moby/spdystream `connection.go`, `stream.go`): client stream ids are odd and increasing, a
SYN_STREAM that breaks this gets RST PROTOCOL_ERROR; the client waits for SYN_REPLY before it writes; pings with odd
ids are the client's and are echoed; flow control (SETTINGS, WINDOW_UPDATE) is ignored by both sides; frames in
either direction push the idle deadline back. DATA for a stream that has ended gets RST INVALID_STREAM (SPDY/3
2.6.1); DATA for an id the client never opened is a broken peer and ends the connection (client-go never sends it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import Mapping
from typing import Protocol

from vnode.kubelet.inbound import InputBuffer
from vnode.kubelet.spdy import frames as f
from vnode.providers.streams import StreamClosed

log = logging.getLogger(__name__)

# The kubelet copies with io.Copy's 32 KiB buffer, so peers see DATA frames of at most this size.
DATA_CHUNK_BYTES = 32 * 1024


class ConnectionClosed(Exception):
    """The SPDY connection has ended: no further streams will arrive."""


class FrameTransport(Protocol):
    """Where frames go; asyncio.StreamWriter satisfies it."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    def is_closing(self) -> bool: ...


class SpdyStream:
    """One stream the peer opened; readable until the peer's FIN, writable until ours (or a reset either way)."""

    def __init__(self, conn: SpdyConnection, stream_id: int, headers: Mapping[str, str], buffer_bytes: int) -> None:
        self.id = stream_id
        self.headers = headers
        self._conn = conn
        self._input = InputBuffer(buffer_bytes)
        self.local_done = False  # we sent FIN or RST, or the connection ended
        self.was_reset = False

    @property
    def remote_done(self) -> bool:
        """The peer sent FIN or RST, or the connection ended."""
        return self._input.ended

    @property
    def room(self) -> asyncio.Event:
        """Clear while the buffer is full: the read loop waits on it."""
        return self._input.room

    @property
    def buffered_bytes(self) -> int:
        """Data received but not read yet: at most `stream_buffer_bytes` plus one frame."""
        return self._input.buffered_bytes

    async def read(self) -> bytes:
        """The next chunk; after the peer's FIN or the connection's end what is buffered, then b''. After a reset,
        b'' straight away."""
        return await self._input.read()

    async def write(self, data: bytes) -> None:
        """DATA frames of at most DATA_CHUNK_BYTES, each awaiting drain; StreamClosed after a reset, FIN or close."""
        view = memoryview(data)
        start = 0
        while True:
            if self.local_done:
                raise StreamClosed(f"SPDY stream {self.id} is closed for writing")
            if start >= len(view):
                return
            await self._conn.send(f.Data(self.id, bytes(view[start : start + DATA_CHUNK_BYTES])))
            start += DATA_CHUNK_BYTES

    async def close_write(self) -> None:
        if self.local_done:
            return
        self.local_done = True
        try:
            await self._conn.send(f.Data(self.id, b"", fin=True))
        except StreamClosed:
            log.debug("FIN for SPDY stream %d not sent: the connection is closed", self.id)
        self._conn.forget_if_done(self)

    def reset(self, status: int = f.CANCEL) -> None:
        """RST_STREAM (CANCEL by default); nothing once the stream is fully closed. Unread data is dropped."""
        if self.was_reset or (self.local_done and self.remote_done):
            return
        self.end(reset=True)
        self._conn.reset_locally(self, status)

    # The connection's side: its read loop feeds the stream and ends it.

    def feed(self, data: bytes, fin: bool) -> None:
        self._input.feed(data)
        if fin:
            self._input.feed_eof()

    def end(self, *, reset: bool) -> None:
        """No more data either way; a reset also drops what was not read."""
        self.local_done = True
        if reset:
            self.was_reset = True
            self._input.discard()
        else:
            self._input.feed_eof()
            self._input.room.set()  # nothing more arrives: the read loop must not wait on this stream


class SpdyConnection:
    """One SPDY/3.1 connection, server side. Start `run()` in a task; `accept_stream()` hands over opened streams."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: FrameTransport,
        *,
        idle_timeout_seconds: float,
        max_frame_bytes: int = 16 * 1024 * 1024,
        stream_buffer_bytes: int = 1024 * 1024,
        max_streams: int = 1000,
    ) -> None:
        self._frames = f.FrameReader(reader, max_frame_bytes=min(max_frame_bytes, f.MAX_LENGTH),
                                     check_data_stream=self._check_data_stream)
        self._transport = writer
        self._encoder = f.FrameEncoder()
        self._idle_seconds = idle_timeout_seconds if idle_timeout_seconds > 0 else math.inf
        self._buffer_bytes = stream_buffer_bytes
        self._max_streams = max_streams
        self._streams: dict[int, SpdyStream] = {}
        self._reset_by_us: set[int] = set()  # data still in flight for these is dropped, not answered
        self._last_peer_id = 0
        self._pending: collections.deque[SpdyStream] = collections.deque()
        self._accept_ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._stop: asyncio.Future[None] = self._loop.create_future()
        self._goaway_sent = False
        self.closed = asyncio.Event()

    async def run(self) -> None:
        """Read frames until EOF, GOAWAY, a protocol error, the idle timeout or `close()`; then end every stream."""
        reading = asyncio.create_task(self._read_frames(), name="spdy read loop")
        status = f.GOAWAY_OK
        try:
            while not reading.done() and not self._stop.done():
                remaining = self._last_activity + self._idle_seconds - self._loop.time()
                if remaining <= 0:
                    log.debug("SPDY connection idle for %s s; closing", self._idle_seconds)
                    break
                await asyncio.wait({reading, self._stop}, timeout=None if math.isinf(remaining) else remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            if reading.done() and not reading.cancelled() and (exc := reading.exception()) is not None:
                if isinstance(exc, f.SpdyProtocolError):
                    log.debug("ending SPDY connection: %s", exc)
                    status = f.GOAWAY_PROTOCOL_ERROR
                elif isinstance(exc, OSError):
                    log.debug("SPDY connection lost: %s", exc)
                else:
                    log.error("SPDY read loop failed", exc_info=exc)
                    status = f.GOAWAY_INTERNAL_ERROR
        finally:
            reading.cancel()
            self._finish(status)  # before awaiting: a second cancellation must not skip it
            await asyncio.gather(reading, return_exceptions=True)

    async def accept_stream(self) -> SpdyStream:
        """The next stream the peer opened (already answered with SYN_REPLY); ConnectionClosed once closed."""
        while True:
            if self.closed.is_set():
                raise ConnectionClosed("the SPDY connection is closed")
            if self._pending:
                return self._pending.popleft()
            self._accept_ready.clear()
            await self._accept_ready.wait()

    async def close(self) -> None:
        """GOAWAY(OK), then close the transport (which still flushes what was written); idempotent."""
        self._finish(f.GOAWAY_OK)

    # The one place frames are written.

    def _write(self, frame: f.Frame) -> bool:
        if self._transport.is_closing():
            return False  # encoding now would advance the compressor past what the peer sees
        self._transport.write(self._encoder.encode(frame))
        self._last_activity = self._loop.time()
        return True

    async def send(self, frame: f.Frame) -> None:
        """Write `frame` and wait while the transport is backed up; StreamClosed once the connection is gone."""
        if self.closed.is_set() or not self._write(frame):
            raise StreamClosed("the SPDY connection is closed")
        try:
            await self._transport.drain()
        except (OSError, RuntimeError) as exc:
            raise StreamClosed(f"the SPDY connection is closed: {exc}") from exc

    async def _control(self, frame: f.Frame) -> None:
        with contextlib.suppress(StreamClosed):  # the read loop sees the end of the connection next
            await self.send(frame)

    def reset_locally(self, stream: SpdyStream, status: int) -> None:
        self._streams.pop(stream.id, None)
        self._reset_by_us.add(stream.id)
        if not self.closed.is_set():
            self._write(f.RstStream(stream.id, status))

    def forget_if_done(self, stream: SpdyStream) -> None:
        if stream.local_done and stream.remote_done:
            self._streams.pop(stream.id, None)

    # The read loop.

    async def _read_frames(self) -> None:
        while (frame := await self._frames.read_frame()) is not None:
            self._last_activity = self._loop.time()
            match frame:
                case f.Data():
                    await self._on_data(frame)
                case f.SynStream():
                    await self._on_syn_stream(frame)
                case f.RstStream(stream_id):
                    self._reset_by_us.discard(stream_id)
                    if (stream := self._streams.pop(stream_id, None)) is not None:
                        stream.end(reset=True)
                case f.Headers(stream_id, _, fin) if fin and stream_id in self._streams:
                    self._streams[stream_id].feed(b"", fin=True)
                    self.forget_if_done(self._streams[stream_id])
                case f.Ping(ping_id) if ping_id % 2 == 1:
                    await self._control(frame)  # the client's ping: echo it (ours would be even)
                case f.GoAway():
                    return
                # SYN_REPLY (we open no streams), SETTINGS and WINDOW_UPDATE (no flow control) need nothing.

    def _check_data_stream(self, sid: int) -> None:
        if sid % 2 == 0 or sid > self._last_peer_id:
            raise f.SpdyProtocolError(f"DATA for stream {sid}, which the client never opened")

    async def _on_syn_stream(self, frame: f.SynStream) -> None:
        sid = frame.stream_id
        if self._goaway_sent:
            return  # SPDY/3: streams opened after our GOAWAY are ignored
        if sid % 2 == 0 or sid <= self._last_peer_id:
            if (old := self._streams.pop(sid, None)) is not None:
                old.end(reset=True)
            self._reset_by_us.add(sid)
            await self._control(f.RstStream(sid, f.PROTOCOL_ERROR))
            return
        self._last_peer_id = sid
        if len(self._streams) >= self._max_streams or len(self._pending) >= self._max_streams:
            self._reset_by_us.add(sid)
            await self._control(f.RstStream(sid, f.REFUSED_STREAM))
            return
        stream = SpdyStream(self, sid, frame.headers, self._buffer_bytes)
        stream.feed(b"", fin=frame.fin)
        stream.local_done = frame.unidirectional
        self._streams[sid] = stream
        self.forget_if_done(stream)
        await self._control(f.SynReply(sid))
        self._pending.append(stream)
        self._accept_ready.set()

    async def _on_data(self, frame: f.Data) -> None:
        sid = frame.stream_id
        stream = self._streams.get(sid)
        if stream is None:
            if sid in self._reset_by_us:
                if frame.fin:
                    self._reset_by_us.discard(sid)
                return  # was in flight when our RST_STREAM went out
            await self._control(f.RstStream(sid, f.INVALID_STREAM))  # a stream that has ended
            return
        if stream.remote_done:  # data after the peer's FIN
            stream.reset(f.STREAM_ALREADY_CLOSED)
            return
        stream.feed(frame.data, frame.fin)
        self.forget_if_done(stream)
        # Backpressure: take no further frame while this stream's buffer is full.
        await stream.room.wait()

    def _finish(self, status: int) -> None:
        if not self._goaway_sent:
            self._goaway_sent = True
            self._write(f.GoAway(self._last_peer_id, status))
        if not self._transport.is_closing():
            self._transport.close()
        if not self.closed.is_set():
            for stream in list(self._streams.values()):
                stream.end(reset=False)
            self._streams.clear()
            self._pending.clear()
            self.closed.set()
            self._accept_ready.set()
        if not self._stop.done():
            self._stop.set_result(None)
