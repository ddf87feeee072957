"""Port-forward over SPDY/3.1 (`portforward.k8s.io`), as kubectl speaks it directly or tunnelled in a WebSocket.

It owns pairing the client's streams into forwarded connections, the pairing deadline, and the tasks that run each
connection's `forward`. It must not negotiate the protocol, write the HTTP upgrade, or touch the pod: every forwarded
connection reaches `forward` as a protocol-free ByteStream.

Upstream facts (kubelet cri/streaming `portforward/httpstream.go`, client-go `tools/portforward/portforward.go`):
- Per forwarded connection the client opens an `error` stream and then a `data` stream, both with the headers
  `streamtype`, `port` and `requestid`; streams pair up by `requestid` (clients too old to send one get the error
  stream's id, and the data stream's id minus 2). A second stream of a type in one pair is an error.
- A pair not complete within the stream creation timeout gets "timed out waiting for streams" on its error stream.
- The port is the data stream's `port` header, a decimal uint16 greater than 0.
- When the forward fails, the error stream carries `error forwarding port P to pod POD, uid UID: ERR` as text;
  either way both streams then get FIN. The client reads the error stream to EOF once the data stream has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from vnode.kubelet.remotecommand import forward_error_text
from vnode.kubelet.spdy.connection import ConnectionClosed, SpdyConnection, SpdyStream
from vnode.providers.streams import ByteStream, StreamClosed

log = logging.getLogger(__name__)

Forward = Callable[[int, ByteStream], Awaitable[None]]  # (port, stream) -> copies until both sides closed

STREAM_TYPE_HEADER, PORT_HEADER, REQUEST_ID_HEADER = "streamtype", "port", "requestid"
ERROR, DATA = "error", "data"


@dataclass
class _Pair:
    request_id: str
    deadline: float
    error: SpdyStream | None = None
    data: SpdyStream | None = None


def parse_port(text: str | None, allowed_ports: Sequence[int] | None) -> int:
    """The port of a `port` header, validated as the kubelet does; ValueError with the kubelet's message if not."""
    if not text:
        raise ValueError(f'"{PORT_HEADER}" header is required')
    if not text.isascii() or not text.isdigit() or int(text) > 0xFFFF:  # Go's strconv.ParseUint(text, 10, 16)
        raise ValueError(f'unable to parse "{text}" as a port: not a decimal number from 0 to 65535')
    port = int(text)
    if port < 1:
        raise ValueError(f'port "{text}" must be > 0')
    if allowed_ports is not None and port not in allowed_ports:
        raise ValueError(f"port {port} is not open for forwarding")
    return port


async def _write_text(stream: SpdyStream, text: str) -> None:
    try:
        await stream.write(text.encode())
    except StreamClosed:
        log.debug("port-forward error not sent: the stream is closed")


async def _send_error(stream: SpdyStream, text: str) -> None:
    await _write_text(stream, text)
    await stream.close_write()


class _Session:
    def __init__(self, conn: SpdyConnection, forward: Forward, allowed_ports: Sequence[int] | None,
                 creation_timeout_seconds: float, pod: str, uid: str) -> None:
        self._conn = conn
        self._forward = forward
        self._allowed = allowed_ports
        self._timeout = creation_timeout_seconds
        self._target = (pod, uid)
        self._pairs: dict[str, _Pair] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    async def run(self) -> None:
        try:
            while True:
                deadline = min((pair.deadline for pair in self._pairs.values()), default=None)
                try:
                    async with asyncio.timeout_at(deadline):
                        stream = await self._conn.accept_stream()
                except TimeoutError:
                    await self._expire()
                    continue
                except ConnectionClosed:
                    return
                await self._add(stream)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _add(self, stream: SpdyStream) -> None:
        kind = stream.headers.get(STREAM_TYPE_HEADER, "")
        if kind not in (ERROR, DATA):
            log.debug("resetting port-forward stream %d of type %r", stream.id, kind)
            stream.reset()
            return
        request_id = stream.headers.get(REQUEST_ID_HEADER) or str(stream.id if kind == ERROR else stream.id - 2)
        pair = self._pairs.get(request_id)
        if pair is None:
            pair = self._pairs[request_id] = _Pair(request_id, self._loop.time() + self._timeout)
        if (pair.error if kind == ERROR else pair.data) is not None:
            stream.reset()
            if pair.error is not None:
                await _write_text(pair.error, f"error processing stream for request {request_id}: "
                                  f"{kind} stream already assigned")
            return
        if kind == ERROR:
            pair.error = stream
        else:
            pair.data = stream
        if pair.error is None or pair.data is None:
            return
        del self._pairs[request_id]
        try:
            port = parse_port(pair.data.headers.get(PORT_HEADER), self._allowed)
        except ValueError as exc:
            pair.data.reset()
            await _send_error(pair.error, f"error processing stream for request {request_id}: {exc}")
            return
        task = asyncio.create_task(self._run_pair(port, pair.error, pair.data), name=f"spdy port-forward {port}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self) -> None:
        now = self._loop.time()
        for request_id, pair in list(self._pairs.items()):
            if pair.deadline > now:
                continue
            del self._pairs[request_id]
            log.debug("port-forward request %s: timed out waiting for streams", request_id)
            if pair.data is not None:
                pair.data.reset()
            if pair.error is not None:
                await _send_error(pair.error, f"(request={request_id}) timed out waiting for streams")

    async def _run_pair(self, port: int, error: SpdyStream, data: SpdyStream) -> None:
        try:
            try:
                await self._forward(port, data)
            except Exception as exc:
                await _send_error(error, forward_error_text(port, exc, *self._target))
            await error.close_write()
            await data.close_write()
        finally:
            # Client data nobody will read must not fill the buffer and stall the connection's other streams:
            # a stream still open from the client's side is reset (nothing is sent for one already closed).
            data.reset()
            error.reset()


async def serve_port_forward(
    conn: SpdyConnection, forward: Forward, *, allowed_ports: Sequence[int] | None, creation_timeout_seconds: float,
    pod: str = "", uid: str = "",
) -> None:
    """Serve forwarded connections on `conn` until it closes; each complete stream pair runs `forward` concurrently.

    `allowed_ports` (None: any) limits the ports; `pod` and `uid` only name the target in error messages (the kubelet
    writes the pod's full name and UID). Forwards still running when the connection ends are cancelled and awaited.
    """
    await _Session(conn, forward, allowed_ports, creation_timeout_seconds, pod, uid).run()
