"""SPDY/3.1 tunnelled through a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`): a byte stream in each
direction for `SpdyConnection`, carried in binary WebSocket messages.

It owns the pump between WebSocket messages and a (reader, writer) pair, with flow control both ways. It must not
negotiate the subprotocol or parse SPDY.

Upstream facts (client-go `tools/portforward/tunneling_connection.go`, apiserver `pkg/util/proxy/streamtunnel.go`):
the tunnel is a plain net.Conn over gorilla/websocket. Each Write is sent as one binary message holding exactly the
bytes written (no channel or prefix byte: unlike the channel protocols in `wsstream`, the tunnel has no framing of
its own), and a reader concatenates message payloads, so message boundaries carry no meaning. A non-binary message
is an error ("invalid message type received"); a close with 1000 reads as EOF; Close sends a close with 1000. A
server that terminates the tunnel itself runs the SPDY server directly on it: there is no HTTP response inside.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from aiohttp import ClientWebSocketResponse, WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

MessageSocket = web.WebSocketResponse | ClientWebSocketResponse


class _ReceivePause(asyncio.ReadTransport):
    """Lets asyncio.StreamReader's own flow control (pause above 2x its limit) hold the receive loop back."""

    def __init__(self) -> None:
        super().__init__()
        self.may_receive = asyncio.Event()
        self.may_receive.set()

    def pause_reading(self) -> None:
        self.may_receive.clear()

    def resume_reading(self) -> None:
        self.may_receive.set()

    def is_reading(self) -> bool:
        return self.may_receive.is_set()


class TunnelWriter:
    """The sending half (a `FrameTransport`): bytes queue here and the tunnel's sender turns them into messages."""

    def __init__(self, high_water_bytes: int) -> None:
        self._high_water = high_water_bytes
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_bytes = 0
        self._closing = False
        self.broken = False
        self.has_work = asyncio.Event()
        self._below_high_water = asyncio.Event()
        self._below_high_water.set()

    def write(self, data: bytes) -> None:
        if self._closing or self.broken or not data:
            return  # like a closing asyncio transport: late writes are dropped
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.has_work.set()
        if self._pending_bytes > self._high_water:
            self._below_high_water.clear()

    async def drain(self) -> None:
        while not self.broken and self._pending_bytes > self._high_water:
            await self._below_high_water.wait()
        if self.broken:
            raise ConnectionResetError("the WebSocket tunnel is closed")

    def close(self) -> None:
        self._closing = True
        self.has_work.set()

    def is_closing(self) -> bool:
        return self._closing or self.broken

    def take(self) -> bytes:
        """Everything queued, as one message's payload (b'' when nothing is)."""
        payload = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        self.has_work.clear()
        self._below_high_water.set()
        return payload

    def fail(self) -> None:
        self.broken = True
        self._pending.clear()
        self._pending_bytes = 0
        self._below_high_water.set()


class WebSocketByteTunnel:
    """`reader` gets the payloads of the peer's binary messages; bytes written to `writer` go out as messages.

    `run()` pumps both directions until the WebSocket closes (a text message is a protocol error and closes it);
    closing `writer` sends what is queued, then a close with 1000. `aclose()` does the same when `run()` has been
    cancelled. `reader` buffers about twice `reader_limit_bytes` before the pump stops taking messages; `writer`
    lets `drain()` wait above `write_buffer_bytes`.
    """

    def __init__(
        self, ws: MessageSocket, *, reader_limit_bytes: int = 64 * 1024, write_buffer_bytes: int = 64 * 1024
    ) -> None:
        self._ws = ws
        self._pause = _ReceivePause()
        self.reader = asyncio.StreamReader(limit=reader_limit_bytes)
        self.reader.set_transport(self._pause)
        self.writer = TunnelWriter(write_buffer_bytes)

    async def run(self) -> None:
        sender = asyncio.create_task(self._send(), name="websocket tunnel send")
        try:
            while not self._ws.closed:
                await self._pause.may_receive.wait()
                msg = await self._ws.receive()
                if msg.type is WSMsgType.BINARY:
                    self.reader.feed_data(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    log.debug("closing SPDY tunnel: a text message")
                    await self._ws.close(code=WSCloseCode.PROTOCOL_ERROR)
                    break
                elif msg.type not in (WSMsgType.PING, WSMsgType.PONG):
                    break  # CLOSE (aiohttp has answered it), CLOSING, CLOSED or ERROR
        finally:
            self.reader.feed_eof()
            if not sender.done() and not self.writer.is_closing():
                self.writer.fail()  # nothing can be sent on a closed WebSocket
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def aclose(self) -> None:
        """Send what is still queued and close the WebSocket with 1000 if it is open; idempotent."""
        self.writer.close()
        payload = self.writer.take()
        self.reader.feed_eof()
        if self._ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            if payload:
                await self._ws.send_bytes(payload)
            await self._ws.close(code=WSCloseCode.OK)

    async def _send(self) -> None:
        try:
            while True:
                await self.writer.has_work.wait()
                payload = self.writer.take()
                if payload:
                    await self._ws.send_bytes(payload)
                elif self.writer.is_closing():
                    await self._ws.close(code=WSCloseCode.OK)
                    return
        except (ConnectionError, RuntimeError) as exc:
            log.debug("SPDY tunnel send failed: %s", exc)
            self.writer.fail()
