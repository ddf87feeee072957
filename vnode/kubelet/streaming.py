"""Exec, attach and port-forward sessions: find the pod, pick the wire adapter, hand the provider protocol-free streams.

SPDY/3.1 upgrades arrive here as raw connections (aiohttp cannot parse them: see `util.front`); WebSocket upgrades
arrive as aiohttp requests. Either way the session answers the upgrade at once (before the provider's own setup,
which may be slow: fabric8 gives up on an upgrade after 15 s) and then runs `remotecommand.run_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vnode.config import KubeletSettings
from vnode.kubelet import remotecommand as rc
from vnode.kubelet.channels import PORT_FORWARD_V1, SPDY_VERSIONS
from vnode.kubelet.metrics import VnodeMetrics
from vnode.kubelet.spdy.connection import ConnectionClosed, SpdyConnection
from vnode.kubelet.spdy_exec import open_command_channels
from vnode.kubelet.spdy_portforward import serve_port_forward
from vnode.kubelet.ws_codec import REMOTE_COMMAND_PROTOCOLS
from vnode.kubelet.ws_exec import WebSocketCommandChannels
from vnode.kubelet.ws_portforward import PORT_FORWARD_PROTOCOLS, serve_websocket_port_forward
from vnode.kubelet.ws_tunnel import WebSocketByteTunnel
from vnode.providers.base import PodRef, Provider
from vnode.providers.streams import ByteStream
from vnode.util.front import RequestHead, write_simple_response

log = logging.getLogger(__name__)
Obj = dict[str, Any]
PodGetter = Callable[[str], Obj | None]  # "namespace/name" -> the pod as the informer holds it
SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"  # kubectl 1.31+ port-forward: SPDY inside WebSocket messages


class StreamRefused(Exception):
    """The request cannot start a session: answered with `status` and `text` (text/plain), as the kubelet does."""

    def __init__(self, status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = tuple(headers)


@dataclass(frozen=True)
class Session:
    target: rc.StreamTarget
    ref: PodRef
    options: rc.CommandOptions | None  # None for port-forward


class StreamSessions:
    def __init__(self, settings: KubeletSettings, provider: Provider, pods: PodGetter, metrics: VnodeMetrics) -> None:
        self._settings = settings
        self._provider = provider
        self._pods = pods
        self._metrics = metrics

    # Validation shared by both wires

    def session(self, path: str, query: Sequence[tuple[str, str]]) -> Session:
        target = rc.match_stream_path(path)
        if target is None:
            raise StreamRefused(404, "404 page not found")
        pod = self._pods(f"{target.namespace}/{target.pod}")
        if pod is None or (target.uid and pod["metadata"].get("uid") != target.uid):
            raise StreamRefused(404, "pod does not exist")
        ref = PodRef.of(pod)
        try:
            if target.kind == "portForward":
                return Session(target, ref, None)
            options = rc.command_options(target.kind, query)
        except rc.BadStreamRequest as exc:
            raise StreamRefused(400, str(exc)) from None
        spec = pod.get("spec") or {}
        names = {c.get("name") for key in ("containers", "initContainers", "ephemeralContainers")
                 for c in spec.get(key) or []}
        if target.container not in names:
            raise StreamRefused(404, f'container not found ("{target.container}")')
        return Session(target, ref, options)

    def _runner(self, session: Session) -> rc.Runner:
        target, ref = session.target, session.ref
        if target.kind == "exec":
            assert session.options is not None
            command = session.options.command
            return lambda io: self._provider.exec(ref, target.container, command, io)
        return lambda io: self._provider.attach(ref, target.container, io)

    def _forward(self, session: Session) -> Callable[[int, ByteStream], Awaitable[None]]:
        return lambda port, stream: self._provider.port_forward(session.ref, port, stream)

    # SPDY/3.1 (raw connection)

    async def serve_spdy(self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            session = self.session(head.path, head.query)
            supported = (PORT_FORWARD_V1,) if session.options is None else SPDY_VERSIONS
            protocol = rc.negotiate(head.header_values("X-Stream-Protocol-Version"), supported)
            if protocol is None:
                offered = head.header_values("X-Stream-Protocol-Version")
                raise StreamRefused(403, f"unable to upgrade: unable to negotiate protocol: client supports "
                                    f"{offered}, server accepts {list(supported)}",
                                    [("X-Accepted-Stream-Protocol-Versions", p) for p in supported])
        except StreamRefused as refused:
            await write_simple_response(writer, refused.status, refused.text.encode(),
                                        "text/plain; charset=utf-8", refused.headers)
            return
        lines = ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: SPDY/3.1"]
        if protocol:
            lines.append(f"X-Stream-Protocol-Version: {protocol}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        conn = SpdyConnection(reader, writer, idle_timeout_seconds=self._settings.stream_idle_timeout_seconds)
        await self._run_spdy(conn, session, protocol or "")

    async def _run_spdy(self, conn: SpdyConnection, session: Session, protocol: str) -> None:
        target = session.target
        name = f"{target.kind} {session.ref.key}"
        reading = asyncio.create_task(conn.run(), name=f"{name} spdy reader")
        try:
            with counted(self._metrics, target.kind):
                if session.options is None:
                    # The kubelet names the pod by its full name, name_namespace, in forwarding errors.
                    await serve_port_forward(conn, self._forward(session), allowed_ports=None,
                                             creation_timeout_seconds=self._settings.stream_creation_timeout_seconds,
                                             pod=f"{session.ref.name}_{session.ref.namespace}", uid=session.ref.uid)
                    return
                opts = session.options
                try:
                    channels = await open_command_channels(
                        conn, protocol=protocol, stdin=opts.stdin, stdout=opts.stdout, stderr=opts.stderr,
                        tty=opts.tty, creation_timeout_seconds=self._settings.stream_creation_timeout_seconds)
                except (TimeoutError, ConnectionClosed):
                    log.info("%s: the client did not open its streams (in time)", name)
                    return
                async with channels:
                    await rc.run_session(channels, protocol, self._runner(session), name=name)
        finally:
            await conn.close()
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    # WebSocket (aiohttp request)

    async def serve_websocket(self, request: web.Request) -> web.StreamResponse:
        try:
            session = self.session(request.path, list(request.query.items()))
            if session.options is None:
                ports = rc.forward_ports(list(request.query.items()))
        except StreamRefused as refused:
            return web.Response(status=refused.status, text=refused.text)
        except rc.BadStreamRequest as exc:
            return web.Response(status=400, text=str(exc))
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=400, text="unable to upgrade: missing upgrade headers in request")
        allowed = REMOTE_COMMAND_PROTOCOLS if session.options else (SPDY_TUNNEL_PROTOCOL, *PORT_FORWARD_PROTOCOLS)
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if offered and not set(offered) & set(allowed):
            # golang.org/x/net/websocket answers a failed subprotocol handshake with 403.
            return web.Response(status=403, text=f"requested protocol(s) are not supported: {offered}; supports "
                                f"{list(allowed)}")
        # Pings are answered by aiohttp itself; the client's own keepalive (fabric8 pings every 30 s) suffices.
        ws = web.WebSocketResponse(protocols=allowed, autoping=True)
        await ws.prepare(request)
        target = session.target
        name = f"{target.kind} {session.ref.key}"
        idle = self._settings.stream_idle_timeout_seconds
        with counted(self._metrics, target.kind):
            if session.options is None:
                await self._websocket_port_forward(ws, session, ports, idle)
                return ws
            opts = session.options
            channels = WebSocketCommandChannels(ws, stdin=opts.stdin, stdout=opts.stdout, stderr=opts.stderr,
                                                tty=opts.tty, idle_timeout_seconds=idle)
            async with channels:  # sends the "ready" message on entry
                await rc.run_session(channels, ws.ws_protocol or "channel.k8s.io", self._runner(session), name=name)
        return ws

    async def _websocket_port_forward(self, ws: web.WebSocketResponse, session: Session, ports: list[int],
                                      idle: float) -> None:
        if ws.ws_protocol == SPDY_TUNNEL_PROTOCOL:
            tunnel = WebSocketByteTunnel(ws)
            pumping = asyncio.create_task(tunnel.run(), name=f"port-forward {session.ref.key} tunnel")
            try:
                conn = SpdyConnection(tunnel.reader, tunnel.writer, idle_timeout_seconds=idle)
                await self._run_spdy(conn, session, PORT_FORWARD_V1)
            finally:
                pumping.cancel()
                await asyncio.gather(pumping, return_exceptions=True)
                await tunnel.aclose()
            return
        await serve_websocket_port_forward(ws, ports, self._forward(session), idle_timeout_seconds=idle,
                                           pod=f"{session.ref.name}_{session.ref.namespace}", uid=session.ref.uid)


@contextlib.contextmanager
def counted(metrics: VnodeMetrics, kind: str) -> Iterator[None]:
    """Count an open streaming session (exec, attach, portForward, logs) in vnode's metrics."""
    metrics.stream_opened(kind)
    try:
        yield
    finally:
        metrics.stream_closed(kind)


def wants_spdy(head: RequestHead) -> bool:
    """SPDY/3.1 upgrades are served on the raw connection; everything else (WebSocket too) by aiohttp."""
    return head.upgrade == "spdy/3.1"

