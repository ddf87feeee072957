"""A small SPDY/3.1 client for tests and benchmarks, speaking to a kubelet-side `SpdyConnection` the way client-go's
spdystream does: odd stream ids, SYN_STREAM with a header block, wait for SYN_REPLY, DATA both ways, FIN to half-close,
odd-id pings, GOAWAY at the end.

Use it on any (reader, writer) pair, e.g. a TCP connection after the HTTP upgrade, a WebSocket tunnel, or
`loopback_pair()`; `spdy_session()` wires a client to a served `SpdyConnection` over real loopback TCP.

    async with SpdyClient(reader, writer) as client:
        stream = await client.open_stream({"streamtype": "stdout"})
        await stream.write(b"hi")
        await stream.close_write()
        data = await stream.read_all()

It buffers everything the server sends (no backpressure on the client side) and never raises for what the server
does: frames show up as state (`reply`, `reset_status`, `goaway`, `pings`, `resets_for_unknown`) and, in order, in
`received`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from vnode.kubelet.spdy import frames as f
from vnode.kubelet.spdy.connection import FrameTransport, SpdyConnection

DEFAULT_TIMEOUT = 10.0


class ClientStream:
    """One stream this client opened."""

    def __init__(self, client: SpdyClient, stream_id: int, headers: Mapping[str, str]) -> None:
        self.id = stream_id
        self.headers = dict(headers)
        self._client = client
        self.reply = asyncio.Event()  # SYN_REPLY received
        self.reset_status: int | None = None  # the status of the server's RST_STREAM, if any
        self.fin_received = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._readable = asyncio.Event()

    @property
    def ended(self) -> bool:
        """The server will send nothing more (FIN, RST, or the connection ended)."""
        return self.fin_received or self.reset_status is not None or self._client.closed.is_set()

    async def read(self) -> bytes:
        """The next DATA payload; b'' once the stream has ended and everything was read."""
        while not self._chunks:
            if self.ended:
                return b""
            self._readable.clear()
            await self._readable.wait()
        return self._chunks.popleft()

    async def read_all(self, timeout_seconds: float = DEFAULT_TIMEOUT) -> bytes:
        """Everything until the server's FIN (or RST, or the end of the connection)."""
        parts = []
        async with asyncio.timeout(timeout_seconds):
            while chunk := await self.read():
                parts.append(chunk)
        return b"".join(parts)

    async def write(self, data: bytes, *, frame_bytes: int = 64 * 1024) -> None:
        """DATA frames of at most `frame_bytes`, waiting for the socket to drain after each."""
        for start in range(0, len(data), frame_bytes):
            await self._client.send(f.Data(self.id, data[start : start + frame_bytes]))

    async def close_write(self) -> None:
        """An empty DATA frame with FIN: this side sends nothing more."""
        await self._client.send(f.Data(self.id, b"", fin=True))

    async def reset(self, status: int = f.CANCEL) -> None:
        await self._client.send(f.RstStream(self.id, status))

    def _deliver(self, frame: f.Data) -> None:
        if frame.data:
            self._chunks.append(frame.data)
        self.fin_received = self.fin_received or frame.fin
        self._readable.set()

    def _wake(self) -> None:
        self._readable.set()


class SpdyClient:
    """The client end of one SPDY/3.1 connection; `async with` starts and stops its receive task."""

    def __init__(self, reader: asyncio.StreamReader, writer: FrameTransport) -> None:
        self._frames = f.FrameReader(reader)
        self._writer = writer
        self._encoder = f.FrameEncoder()
        self._next_id = 1
        self._next_ping = 1
        self.streams: dict[int, ClientStream] = {}
        self.goaway: f.GoAway | None = None
        self.goaway_received = asyncio.Event()
        self.closed = asyncio.Event()  # the server's side ended (EOF, or a frame this client cannot parse)
        self.pings: set[int] = set()  # ids of PING frames received (echoes of ours, or the server's own)
        self._ping_seen = asyncio.Event()
        self.resets_for_unknown: list[f.RstStream] = []  # RST_STREAM for ids this client never opened
        self.received: list[f.Frame] = []  # every frame from the server, in order
        self.error: BaseException | None = None
        self._receiver: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SpdyClient:
        self._receiver = asyncio.create_task(self._receive(), name="spdy test client receive")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop receiving and close the socket (no GOAWAY: call `send_goaway()` first for a polite end)."""
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
        self._writer.close()
        wait_closed = getattr(self._writer, "wait_closed", None)
        if wait_closed is not None:
            with contextlib.suppress(OSError):
                await wait_closed()

    async def send(self, frame: f.Frame) -> None:
        """Any frame, in order with everything else this client sends (one encoder, one header compressor)."""
        self._writer.write(self._encoder.encode(frame))
        await self._writer.drain()

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (garbage, truncated frames); the header compressor does not see them."""
        self._writer.write(data)
        await self._writer.drain()

    async def open_stream(
        self, headers: Mapping[str, str], *, fin: bool = False, wait_reply: bool = True,
        timeout_seconds: float = DEFAULT_TIMEOUT,
    ) -> ClientStream:
        """SYN_STREAM with the next odd id; by default waits for the SYN_REPLY, as client-go does before writing."""
        stream = ClientStream(self, self._next_id, headers)
        self._next_id += 2
        self.streams[stream.id] = stream
        await self.send(f.SynStream(stream.id, stream.headers, fin=fin))
        if wait_reply:
            async with asyncio.timeout(timeout_seconds):
                await stream.reply.wait()
        return stream

    async def ping(self, timeout_seconds: float = DEFAULT_TIMEOUT) -> int:
        """A PING with the next odd id; returns its id once the echo arrived."""
        ping_id = self._next_ping
        self._next_ping += 2
        await self.send(f.Ping(ping_id))
        async with asyncio.timeout(timeout_seconds):
            while ping_id not in self.pings:
                self._ping_seen.clear()
                await self._ping_seen.wait()
        return ping_id

    async def send_goaway(self, status: int = f.GOAWAY_OK) -> None:
        await self.send(f.GoAway(self._next_id - 2 if self._next_id > 1 else 0, status))

    async def wait_goaway(self, timeout_seconds: float = DEFAULT_TIMEOUT) -> f.GoAway:
        async with asyncio.timeout(timeout_seconds):
            await self.goaway_received.wait()
        assert self.goaway is not None
        return self.goaway

    async def wait_closed(self, timeout_seconds: float = DEFAULT_TIMEOUT) -> None:
        """Until the server's side of the connection ended."""
        async with asyncio.timeout(timeout_seconds):
            await self.closed.wait()

    async def _receive(self) -> None:
        try:
            while (frame := await self._frames.read_frame()) is not None:
                self.received.append(frame)
                self._dispatch(frame)
        except (f.SpdyProtocolError, OSError) as exc:
            self.error = exc
        finally:
            self.closed.set()
            self.goaway_received.set()
            self._ping_seen.set()
            for stream in self.streams.values():
                stream._wake()

    def _dispatch(self, frame: f.Frame) -> None:
        match frame:
            case f.SynReply(stream_id) if stream_id in self.streams:
                self.streams[stream_id].reply.set()
            case f.Data(stream_id) if stream_id in self.streams:
                self.streams[stream_id]._deliver(frame)
            case f.RstStream(stream_id, status) if stream_id in self.streams:
                stream = self.streams[stream_id]
                stream.reset_status = status
                stream.reply.set()  # a refused stream gets RST instead of SYN_REPLY
                stream._wake()
            case f.RstStream():
                self.resets_for_unknown.append(frame)
            case f.Ping(ping_id):
                self.pings.add(ping_id)
                self._ping_seen.set()
            case f.GoAway():
                self.goaway = frame
                self.goaway_received.set()


def loopback_pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of one real TCP connection on 127.0.0.1 (server end first), with no listener left behind."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return server, client


@dataclass
class Session:
    conn: SpdyConnection
    client: SpdyClient
    run: asyncio.Task[None]  # the connection's run(); done once the connection ended


@contextlib.asynccontextmanager
async def spdy_session(**conn_options: Any) -> AsyncIterator[Session]:
    """A served `SpdyConnection` (its run() in a task) and a `SpdyClient`, over loopback TCP; all ended on exit.

    `conn_options` go to SpdyConnection (idle_timeout_seconds defaults to 30).
    """
    server_sock, client_sock = loopback_pair()
    server_reader, server_writer = await asyncio.open_connection(sock=server_sock)
    client_reader, client_writer = await asyncio.open_connection(sock=client_sock)
    conn_options.setdefault("idle_timeout_seconds", 30.0)
    conn = SpdyConnection(server_reader, server_writer, **conn_options)
    run = asyncio.create_task(conn.run(), name="spdy connection under test")
    try:
        async with SpdyClient(client_reader, client_writer) as client:
            yield Session(conn, client, run)
    finally:
        await conn.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        with contextlib.suppress(OSError):
            await server_writer.wait_closed()
