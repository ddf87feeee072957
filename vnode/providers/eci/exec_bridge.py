"""`EciExecBridge`: one exec into an ECI container: ExecContainerCommand, then its WebSocket pumped to a `StreamIO`.

It owns the aiohttp ClientSession every exec dials with, and one session's tasks (stdin, resizes, pings), which
end with the exec. Assumptions about ECI's WebSocket (eci-wire.md §1), besides the framing in `exec_frames`:
- The `s=` token in WebSocketUri is the only credential: no signature, no headers [obs]. It is dialled at once and
  treated as single-use; a second attempt calls the API again.
- vnode offers `v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`; a refused handshake is retried once
  with a new URI and no subprotocol [unverified that ECI's gateway forwards the offer].
- Stdin: `Stdin=true` only when the client sends input (ECI's default is true). Its EOF reaches the command only
  under v5 (`[255, 0]`); v1-v4 cannot half-close, so there the command keeps its stdin open and the session lasts
  until the command exits by itself or the client leaves (and the socket is closed).
- ECI closes idle sockets after about 60 s [obs]: a ping goes out every `ping_seconds` whatever the traffic.
- The server closes the socket when the command exits [obs]. The exit code comes from the status channel (see
  `exec_frames.parse_status`); a clean close (1000) without status means exit 0 (v1 sends no status on success);
  any other close without status is a broken session (BackendUnavailable).
- ExecContainerCommand's IncorrectStatus means the container is not running [doc].
It must not know about pods, nor about the kubelet's side of exec (SPDY, its WebSocket adapters).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

from vnode.clock import Clock, SystemClock
from vnode.errors import BackendUnavailable, Conflict, NotFound, VnodeError
from vnode.providers.eci import exec_frames as frames
from vnode.providers.eci.client import EciClient, error_code
from vnode.providers.streams import ByteSink, ByteSource, ResizeQueue, StreamClosed, StreamIO

log = logging.getLogger(__name__)

DEFAULT_PROTOCOLS: tuple[str, ...] = (frames.V5, frames.V4, frames.V1)
_CLEAN_CLOSES = frozenset({WSCloseCode.OK, None})  # 1005 (no code given) arrives as None
# An exec's socket carries output chunks of the server's choosing; a kubelet sends at most 32 KiB per message.
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class EciExecBridge:
    def __init__(self, client: EciClient, *, ping_seconds: float = 30.0,
                 protocols: Sequence[str] = DEFAULT_PROTOCOLS, connect_timeout_seconds: float = 10.0,
                 clock: Clock | None = None) -> None:
        self._client = client
        self._clock = clock or SystemClock()
        self._ping_seconds = ping_seconds
        self._protocols = tuple(protocols)
        self._connect_timeout = connect_timeout_seconds
        self._http: aiohttp.ClientSession | None = None  # made on first use: it needs the running loop

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def exec(self, group_id: str, container: str, command: Sequence[str], io: StreamIO) -> int:
        """Run `command` in `container` of group `group_id` with `io`'s streams; its exit code.

        Raises NotFound when the group or container does not exist or the container is not running, and
        BackendUnavailable when the WebSocket cannot be opened or breaks. Cancellation closes the socket, which
        ends the command on ECI's side.
        """
        uri = await self._start(group_id, container, command, io)
        try:
            ws = await self._dial(uri, self._protocols)
        except aiohttp.WSServerHandshakeError as exc:
            log.info("ECI exec: WebSocket handshake offering %s refused (%s %s); retrying without a subprotocol",
                     ", ".join(self._protocols), exc.status, exc.message)
            uri = await self._start(group_id, container, command, io)
            try:
                ws = await self._dial(uri, ())
            except aiohttp.WSServerHandshakeError as again:
                raise BackendUnavailable(f"ECI exec: the WebSocket handshake failed: {again.status} "
                                         f"{again.message}") from again
        try:
            return await _Session(ws, io, self._clock, self._ping_seconds).run()
        finally:
            await ws.close()

    async def _start(self, group_id: str, container: str, command: Sequence[str], io: StreamIO) -> str:
        params = {"ContainerGroupId": group_id, "ContainerName": container, "Command": json.dumps(list(command)),
                  "TTY": io.tty, "Stdin": io.stdin is not None}
        try:
            answer = await self._client.call("ExecContainerCommand", params, mutating=False)
        except Conflict as exc:
            if error_code(exc) == "IncorrectStatus":
                raise NotFound(f'container "{container}" in ECI container group {group_id} is not running') from exc
            raise
        uri = answer.get("WebSocketUri")
        if not isinstance(uri, str) or not uri:
            raise BackendUnavailable("ECI ExecContainerCommand answered without a WebSocketUri")
        return uri

    async def _dial(self, uri: str, protocols: Sequence[str]) -> aiohttp.ClientWebSocketResponse:
        if self._http is None:
            # trust_env=False: dial ECI directly, whatever proxy the environment names. The session's timeout
            # bounds the handshake only, not the socket's life.
            self._http = aiohttp.ClientSession(trust_env=False,
                                               timeout=aiohttp.ClientTimeout(total=self._connect_timeout))
        try:
            return await self._http.ws_connect(uri, protocols=protocols, autoping=True, max_msg_size=_MAX_MESSAGE_BYTES)
        except aiohttp.WSServerHandshakeError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise BackendUnavailable(f"ECI exec: cannot open the WebSocket: {exc or type(exc).__name__}") from exc


class _Session:
    """One open exec socket: output to `io`, input and resizes from it, pings, then the exit code."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, io: StreamIO, clock: Clock, ping_seconds: float) -> None:
        self._ws = ws
        self._io = io
        self._clock = clock
        self._protocol = ws.protocol or frames.V1
        self._ping_seconds = ping_seconds
        self._stdout: ByteSink | None = io.stdout
        self._stderr: ByteSink | None = io.stderr

    async def run(self) -> int:
        helpers = [asyncio.create_task(self._ping(), name="eci exec ping")]
        if self._io.stdin is not None:
            helpers.append(asyncio.create_task(self._send_stdin(self._io.stdin), name="eci exec stdin"))
        if self._io.tty:
            helpers.append(asyncio.create_task(self._send_resizes(self._io.resizes), name="eci exec resizes"))
        try:
            status = await self._receive()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        return self._exit_code(status)

    async def _receive(self) -> bytes:
        status = bytearray()
        async for message in self._ws:
            if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                break  # ERROR: the connection failed; CLOSE and the like end the iteration themselves
            channel, payload = frames.decode(message.data) if message.data else (frames.STDOUT, b"")
            if not payload:
                continue  # the "ready" message, sent first on the lowest output channel
            if channel == frames.STDOUT:
                self._stdout = await _deliver(self._stdout, payload)
            elif channel == frames.STDERR and self._io.stderr is not None:
                self._stderr = await _deliver(self._stderr, payload)
            elif channel == frames.STDERR:
                # Under a tty a kubelet merges stderr into stdout; should ECI still send some, show it there.
                self._stdout = await _deliver(self._stdout, payload)
            elif channel == frames.STATUS:
                status += payload
        return bytes(status)

    def _exit_code(self, status: bytes) -> int:
        if status:
            parsed = frames.parse_status(self._protocol, status)
            if parsed.exit_code is not None:
                return parsed.exit_code
            if parsed.code == 404:
                raise NotFound(parsed.message)
            raise VnodeError(parsed.message)
        close_code = self._ws.close_code
        if close_code in _CLEAN_CLOSES:
            return 0
        raise BackendUnavailable(f"ECI exec: the WebSocket closed with code {close_code} before the command's "
                                 "exit status arrived")

    async def _send(self, message: bytes) -> bool:
        """Whether the message went out (False once the socket is closing)."""
        try:
            await self._ws.send_bytes(message)
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            return False
        return True

    async def _send_stdin(self, source: ByteSource) -> None:
        while True:
            try:
                chunk = await source.read()
            except StreamClosed:
                chunk = b""
            if not chunk:
                break
            if not await self._send(frames.encode(frames.STDIN, chunk)):
                return
        eof = frames.close_stdin(self._protocol)
        if eof is not None:
            await self._send(eof)

    async def _send_resizes(self, sizes: ResizeQueue) -> None:
        async for size in sizes:
            if not await self._send(frames.resize(size)):
                return

    async def _ping(self) -> None:
        while True:
            await self._clock.sleep(self._ping_seconds)
            with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
                await self._ws.ping()


async def _deliver(sink: ByteSink | None, data: bytes) -> ByteSink | None:
    """Write to `sink`; the sink to use from now on (None once its reader left: the rest is dropped)."""
    if sink is None:
        return None
    try:
        await sink.write(data)
    except StreamClosed:
        return None
    return sink
