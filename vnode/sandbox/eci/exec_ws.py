"""The emulator's exec WebSocket: what ExecContainerCommand's `WebSocketUri` (`ws://<emulator>/exec/?s=<token>`)
connects to, running the command through the group runtime.

It owns the session tokens (single-use, valid `token_seconds` on the emulator's clock) and each session's socket.
What it answers, as eci-wire.md §1 derives it from the evidence (the framing itself is [unverified] for ECI):
- The token is the only credential; an unknown, used or expired one is refused with 403 before the upgrade.
- Kubernetes' channel framing (the kubelet's own code in `vnode.kubelet`): binary messages `[channel] + payload`,
  channels 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize; an empty stdout message first; the exit status on
  channel 3 (always a metav1.Status under v4/v5, text only on failure under v1), then a close with 1000.
- Subprotocols `v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io` (none offered = channel.k8s.io). With
  `refuse_subprotocols` set, an offer fails the handshake (400), like a gateway that does not forward it.
- A session with no traffic (data either way, or a client ping) for `idle_timeout_seconds` of the event loop's time
  is closed with 1001 and its command cancelled; so is the command when the client disconnects.
It must not parse API parameters or know how a runtime runs the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import WSCloseCode, web

from vnode.clock import Clock
from vnode.errors import NotFound
from vnode.kubelet import remotecommand as rc
from vnode.kubelet.channels import V1, V4, V5
from vnode.kubelet.ws_exec import WebSocketCommandChannels
from vnode.providers.streams import StreamIO
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.runtime import ContainerNotRunning, GroupRuntime
from vnode.sandbox.eci.store import GroupStore

log = logging.getLogger(__name__)

PROTOCOLS: tuple[str, ...] = (V5, V4, V1)
SESSIONS_KEPT = 1000


@dataclass(frozen=True)
class ExecTicket:
    """What one ExecContainerCommand call asked to run; redeemed by dialling its token."""

    group_id: str
    container: str
    command: tuple[str, ...]
    tty: bool
    stdin: bool
    expires: datetime


@dataclass(frozen=True)
class ExecSessionRecord:
    """One finished session, for tests and operators: what ran, over which protocol, how it ended."""

    ticket: ExecTicket
    protocol: str
    exit_code: int | None  # None: no exit code (the client left, the session idled out, or it failed)


class ExecTickets:
    """Tokens handed out in WebSocketUri; each may be redeemed once, before it expires."""

    def __init__(self, clock: Clock, *, token_seconds: float) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=token_seconds)
        self._open: dict[str, ExecTicket] = {}

    def issue(self, group_id: str, container: str, command: Sequence[str], *, tty: bool, stdin: bool) -> str:
        now = self._clock.now()
        for token in [t for t, ticket in self._open.items() if ticket.expires <= now]:
            del self._open[token]
        token = secrets.token_urlsafe(24)
        self._open[token] = ExecTicket(group_id, container, tuple(command), tty, stdin, now + self._ttl)
        return token

    def redeem(self, token: str) -> ExecTicket | None:
        ticket = self._open.pop(token, None)
        if ticket is None or ticket.expires <= self._clock.now():
            return None
        return ticket


class _WatchedSocket(web.WebSocketResponse):
    """A server WebSocket that notes when traffic last crossed it: data either way, and the client's pings (with
    autoping off, `receive` returns them and the kubelet's channel socket answers)."""

    last_activity = 0.0

    def _touch(self) -> None:
        self.last_activity = asyncio.get_running_loop().time()

    async def receive(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (aiohttp's signature)
        message = await super().receive(timeout)
        self._touch()
        return message

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None:
        await super().send_bytes(data, compress)
        self._touch()


class ExecSocket:
    """The `/exec/` route."""

    def __init__(self, store: GroupStore, runtime: GroupRuntime, tickets: ExecTickets, *,
                 idle_timeout_seconds: float) -> None:
        self._store = store
        self._runtime = runtime
        self._tickets = tickets
        self._idle_seconds = idle_timeout_seconds
        self.refuse_subprotocols = False
        self.sessions: deque[ExecSessionRecord] = deque(maxlen=SESSIONS_KEPT)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = self._tickets.redeem(request.query.get("s", ""))
        if ticket is None:
            return web.Response(status=403, text="the exec session token is unknown, used or expired")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=400, text="a WebSocket upgrade is required")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if offered and (self.refuse_subprotocols or not set(offered) & set(PROTOCOLS)):
            return web.Response(status=400, text=f"unsupported WebSocket subprotocol(s): {offered}")
        ws = _WatchedSocket(protocols=PROTOCOLS, autoping=False)
        await ws.prepare(request)
        protocol = ws.ws_protocol or V1
        exit_code: int | None = None

        async def run(io: StreamIO) -> int:
            nonlocal exit_code
            exit_code = await self._run(ticket, io)
            return exit_code

        # Idle handling is the watchdog's (it counts pings), so the channel socket's own timeout is off.
        channels = WebSocketCommandChannels(ws, stdin=ticket.stdin, stdout=True, stderr=not ticket.tty,
                                            tty=ticket.tty, idle_timeout_seconds=0)
        watchdog = asyncio.create_task(self._watch(ws), name="eci exec idle watchdog")
        try:
            async with channels:  # sends the empty stdout message first
                await rc.run_session(channels, protocol, run, name=f"eci exec {ticket.group_id}/{ticket.container}")
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            self.sessions.append(ExecSessionRecord(ticket, protocol, exit_code))
        return ws

    async def _run(self, ticket: ExecTicket, io: StreamIO) -> int:
        try:
            group = self._store.get(ticket.group_id)
            return await self._runtime.exec(group, ticket.container, ticket.command, io)
        except EciApiError as exc:  # the group was deleted since the token was issued
            raise NotFound(exc.message) from exc
        except ContainerNotRunning as exc:
            raise NotFound(str(exc)) from exc

    async def _watch(self, ws: _WatchedSocket) -> None:
        loop = asyncio.get_running_loop()
        ws.last_activity = loop.time()
        while True:
            remaining = ws.last_activity + self._idle_seconds - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)  # traffic meanwhile moves the deadline: look again then
        log.debug("ECI exec session idle for %s s; closing it", self._idle_seconds)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.close(code=WSCloseCode.GOING_AWAY)
