"""Exec and attach over a WebSocket: `CommandChannels` on an upgraded aiohttp `WebSocketResponse`, plus the channel
socket (send, receive loop, idle timeout, waiting for room in `inbound.InputBuffer`s) that `ws_portforward` runs on
too.

It must not negotiate the subprotocol, authenticate, or run the provider call: the route handler prepares the
socket, and `remotecommand.run_session` drives `WebSocketCommandChannels`.

Upstream facts (cri-streaming `remotecommand/websocket.go`, `wsstream/conn.go`): channels are 0 stdin (read),
1 stdout, 2 stderr, 3 error (write) and 4 resize (read); right after the upgrade the server sends one empty message on
the lowest writable channel; client data on a channel the server does not read is dropped, not an error; every
message in either direction pushes the idle deadline back (pings do not count); the session ends with status on
channel 3, then a close with 1000. A v5 close signal for a channel beyond 4 ends the session as a protocol error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Sequence
from types import TracebackType

from aiohttp import WSCloseCode, WSMsgType, web

from vnode.kubelet.channels import ERROR, RESIZE, STDERR, STDIN, STDOUT
from vnode.kubelet.inbound import InputBuffer
from vnode.kubelet.ws_codec import ChannelProtocolError, closed_channel, decode, encode
from vnode.providers.streams import ResizeQueue, StreamClosed, StreamIO, TerminalSize

log = logging.getLogger(__name__)

# The kubelet copies container output with io.Copy's 32 KiB buffer, so clients see messages of at most this size;
# it also keeps each message far below aiohttp's (kubernetes_asyncio's) 4 MiB default receive limit.
MAX_MESSAGE_PAYLOAD = 32 * 1024
_EXEC_CHANNELS = 5  # stdin, stdout, stderr, error, resize


class ChannelSocket:
    """One prepared WebSocket carrying channel messages in its negotiated protocol ("" or None: binary v1)."""

    def __init__(self, ws: web.WebSocketResponse, *, idle_timeout_seconds: float) -> None:
        self._ws = ws
        self.protocol = ws.ws_protocol or ""
        self._idle_seconds = idle_timeout_seconds if idle_timeout_seconds > 0 else math.inf
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()

    @property
    def closed(self) -> bool:
        return self._ws.closed

    def _remaining(self) -> float:
        return self._last_activity + self._idle_seconds - self._loop.time()

    async def send(self, channel: int, payload: bytes) -> None:
        """Send one message; returns once aiohttp has taken it (it waits while the transport is paused)."""
        if self._ws.closed:
            raise StreamClosed("the WebSocket is closed")
        message = encode(self.protocol, channel, payload)
        try:
            if isinstance(message, str):
                await self._ws.send_str(message)
            else:
                await self._ws.send_bytes(message)
        except (ConnectionError, RuntimeError) as exc:
            raise StreamClosed(f"the WebSocket is closed: {exc}") from exc
        self._last_activity = self._loop.time()

    async def send_data(self, channel: int, data: bytes) -> None:
        """Send `data` as messages of at most MAX_MESSAGE_PAYLOAD bytes; nothing at all for b''."""
        if self._ws.closed:
            raise StreamClosed("the WebSocket is closed")
        view = memoryview(data)
        for start in range(0, len(view), MAX_MESSAGE_PAYLOAD):
            await self.send(channel, bytes(view[start : start + MAX_MESSAGE_PAYLOAD]))

    async def receive(self, *, room_in: Sequence[InputBuffer] = ()) -> tuple[int, bytes] | None:
        """The next data message as (channel, payload), once every buffer in `room_in` has room.

        None when the session is over: the client closed, the connection failed, or it stayed idle too long (then
        the socket is closed with 1001). Raises ChannelProtocolError for a message that does not decode.
        """
        for buffer in room_in:
            while not buffer.room.is_set():
                if not await self._before_idle(buffer.room):
                    return None
        while True:
            remaining = self._remaining()
            if remaining <= 0:
                await self._expire()
                return None
            try:
                # aiohttp answers pings inside receive() (autoping), so this loop must keep calling it.
                msg = await self._ws.receive(timeout=remaining)
            except TimeoutError:
                continue  # a send may have pushed the deadline back; the top of the loop decides
            if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                self._last_activity = self._loop.time()
                if msg.data:  # upstream skips empty messages
                    return decode(self.protocol, msg.data)
            elif msg.type is WSMsgType.PING:  # only seen when the handler turned autoping off
                await self._ws.pong(msg.data)
            elif msg.type is not WSMsgType.PONG:
                return None  # CLOSE (aiohttp already replied), CLOSING, CLOSED or ERROR

    async def _before_idle(self, event: asyncio.Event) -> bool:
        while (remaining := self._remaining()) > 0:
            try:
                async with asyncio.timeout(remaining):  # not wait_for: it can lose a cancellation on 3.11
                    await event.wait()
                return True
            except TimeoutError:
                continue
        await self._expire()
        return False

    async def _expire(self) -> None:
        log.debug("WebSocket idle for %s s; closing", self._idle_seconds)
        await self.close(WSCloseCode.GOING_AWAY)

    async def reject(self, exc: ChannelProtocolError) -> None:
        """End the session over a message the protocol does not allow."""
        log.debug("closing WebSocket after a malformed message: %s", exc)
        await self.close(WSCloseCode.PROTOCOL_ERROR)

    async def close(self, code: int = WSCloseCode.OK) -> None:
        """The close handshake (aiohttp waits for the client's close up to the socket's timeout); once only."""
        if not self._ws.closed:
            await self._ws.close(code=code)


def parse_terminal_size(payload: bytes) -> TerminalSize | None:
    """A resize message, decoded as Go decodes JSON into struct{Width, Height uint16}; None when malformed.

    Go matches keys case-insensitively and leaves a missing (or null) field at 0.
    """
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    size = {"width": 0, "height": 0}
    for key, number in value.items():
        name = key.lower()
        if name not in size or number is None:
            continue
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 0xFFFF:
            return None
        size[name] = number
    return TerminalSize(width=size["width"], height=size["height"])


class _ChannelSink:
    def __init__(self, socket: ChannelSocket, channel: int) -> None:
        self._socket = socket
        self._channel = channel

    async def write(self, data: bytes) -> None:
        await self._socket.send_data(self._channel, data)


class WebSocketCommandChannels:
    """`CommandChannels` for one exec/attach session on a prepared WebSocket; owns its receive task."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
        idle_timeout_seconds: float,
        stdin_buffer_bytes: int = 1024 * 1024,
    ) -> None:
        self._socket = ChannelSocket(ws, idle_timeout_seconds=idle_timeout_seconds)
        self._stdin = InputBuffer(stdin_buffer_bytes) if stdin else None
        self._ready_channel = STDOUT if stdout else STDERR if stderr else ERROR
        self._io = StreamIO(
            stdin=self._stdin,
            stdout=_ChannelSink(self._socket, STDOUT) if stdout else None,
            stderr=_ChannelSink(self._socket, STDERR) if stderr else None,
            tty=tty,
            resizes=ResizeQueue(),
        )
        self._gone = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    @property
    def io(self) -> StreamIO:
        return self._io

    @property
    def stdin_buffered_bytes(self) -> int:
        """Client input received but not yet read by the provider (bounded by `stdin_buffer_bytes` + a message)."""
        return self._stdin.buffered_bytes if self._stdin is not None else 0

    async def start(self) -> None:
        """Send the "ready" message and start receiving; a second call does nothing."""
        if self._reader is not None:
            return
        # If the client is already gone, the receive task finds the socket closed and ends the session.
        with contextlib.suppress(StreamClosed):
            await self._socket.send(self._ready_channel, b"")
        self._reader = asyncio.create_task(self._receive(), name="websocket exec receive")

    async def finish(self, status: bytes | None) -> None:
        if status is not None:
            try:
                await self._socket.send(ERROR, status)
            except StreamClosed:
                log.debug("exec status not sent: the client is gone")
        await self._socket.close(WSCloseCode.OK)

    async def client_gone(self) -> None:
        await self._gone.wait()

    async def aclose(self, code: int = WSCloseCode.OK) -> None:
        """Stop receiving and close the socket with `code` if it is still open; safe to call more than once."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait({self._reader})
        self._end_input()
        await self._socket.close(code)

    async def __aenter__(self) -> WebSocketCommandChannels:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            await self.aclose()
        elif issubclass(exc_type, asyncio.CancelledError):
            await self.aclose(WSCloseCode.GOING_AWAY)  # the server is shutting down
        else:
            await self.aclose(WSCloseCode.INTERNAL_ERROR)

    def _end_input(self) -> None:
        if self._stdin is not None:
            self._stdin.feed_eof()
        self._io.resizes.close()
        self._gone.set()

    async def _receive(self) -> None:
        room_in = (self._stdin,) if self._stdin is not None else ()
        try:
            while (message := await self._socket.receive(room_in=room_in)) is not None:
                self._dispatch(*message)
        except ChannelProtocolError as exc:
            await self._socket.reject(exc)
        finally:
            self._end_input()

    def _dispatch(self, channel: int, payload: bytes) -> None:
        target = closed_channel(self._socket.protocol, channel, payload)
        if target is not None:
            if target >= _EXEC_CHANNELS:
                raise ChannelProtocolError(f"close signal for channel {target}, which this session does not have")
            if target == STDIN and self._stdin is not None:
                self._stdin.feed_eof()
            elif target == RESIZE:
                self._io.resizes.close()
            return
        if channel == STDIN and self._stdin is not None:
            self._stdin.feed(payload)
        elif channel == RESIZE and self._io.tty:
            size = parse_terminal_size(payload)
            if size is None:
                log.debug("ignoring a malformed resize message")
            else:
                self._io.resizes.put(size)
        # Anything else targets a channel the server only writes (or one not opened): upstream drops it.
