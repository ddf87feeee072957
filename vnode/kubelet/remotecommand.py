"""The wire-independent part of exec, attach and port-forward: request paths and queries, protocol negotiation,
and one session's life (start the provider's call, end with its exit status, cancel it when the client leaves).

It knows nothing of SPDY or WebSocket framing: adapters (`spdy_exec`, `ws_exec`) provide `CommandChannels`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vnode.errors import NotFound, VnodeError
from vnode.kubelet.channels import CommandChannels, error_status, exit_status
from vnode.providers.streams import StreamIO

log = logging.getLogger(__name__)

StreamKind = Literal["exec", "attach", "portForward"]
Query = Sequence[tuple[str, str]]

# /exec|attach/{ns}/{pod}/{container} and /{ns}/{pod}/{uid}/{container}; /portForward/{ns}/{pod}[/{uid}]
_COMMAND_PATH = re.compile(r"^/(exec|attach)/([^/]+)/([^/]+)(?:/([^/]+))?/([^/]+)/?$")
_PORT_FORWARD_PATH = re.compile(r"^/portForward/([^/]+)/([^/]+)(?:/([^/]+))?/?$")
# The kubelet's form values are "1"; clients that call it directly send "true" (and kubernetes_asyncio "True").
_TRUE = ("1", "true", "True")


class BadStreamRequest(ValueError):
    """The request cannot start a session; the kubelet answers 400 with this text."""


@dataclass(frozen=True)
class StreamTarget:
    kind: StreamKind
    namespace: str
    pod: str
    uid: str | None  # from the path's uid form: the session is refused if the pod's UID differs
    container: str  # "" for port-forward


def match_stream_path(path: str) -> StreamTarget | None:
    """The session a path asks for, or None when it is not an exec, attach or port-forward path."""
    command = _COMMAND_PATH.match(path)
    if command:
        kind: StreamKind = "exec" if command.group(1) == "exec" else "attach"
        return StreamTarget(kind, command.group(2), command.group(3), command.group(4), command.group(5))
    forward = _PORT_FORWARD_PATH.match(path)
    if forward:
        return StreamTarget("portForward", forward.group(1), forward.group(2), forward.group(3), "")
    return None


@dataclass(frozen=True)
class CommandOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(query: Query, *names: str) -> bool:
    return any(key in names and value in _TRUE for key, value in query)


def command_options(kind: StreamKind, query: Query) -> CommandOptions:
    """Decode `command`, `input`/`stdin`, `output`/`stdout`, `error`/`stderr` and `tty` like the kubelet.

    kube-apiserver renames the client's `stdin` to `input` and so on (pod strategy); both spellings are accepted.
    """
    tty = _flag(query, "tty")
    stdin = _flag(query, "input", "stdin")
    stdout = _flag(query, "output", "stdout")
    # With a tty the terminal merges stderr into stdout: the kubelet drops the stderr stream.
    stderr = _flag(query, "error", "stderr") and not tty
    if not (stdin or stdout or stderr):
        raise BadStreamRequest("you must specify at least 1 of stdin, stdout, stderr")
    command = tuple(value for key, value in query if key == "command")
    if kind == "exec" and not command:
        raise BadStreamRequest("you must specify a command")
    return CommandOptions(command, stdin, stdout, stderr, tty)


def forward_ports(query: Query) -> list[int]:
    """The `port` values (repeated, or comma-separated as kube-apiserver joins them)."""
    ports: list[int] = []
    for key, value in query:
        if key != "port":
            continue
        for text in value.split(","):
            try:
                port = int(text)
            except ValueError:
                raise BadStreamRequest(f'unable to parse "{text}" as a port: not an integer') from None
            if not 0 < port < 65536:
                raise BadStreamRequest(f"port {port} must be > 0 and < 65536")
            ports.append(port)
    return ports


def negotiate(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first protocol the client offers that we support (httpstream.Handshake), None if none.

    A client that offers nothing gets "" (the v1 protocol), as with the kubelet.
    """
    if not offered:
        return ""
    for protocol in offered:
        if protocol in supported:
            return protocol
    return None


def forward_error_text(port: int, exc: Exception, pod: str, uid: str) -> str:
    """The kubelet's text for a failed port-forward, as both wires carry it on the port's error stream or channel.

    Only provider errors (VnodeError, OSError) show their message; anything else is logged and named by type. An
    empty `pod` leaves the target out.
    """
    if isinstance(exc, VnodeError | OSError):
        reason = str(exc) or type(exc).__name__
    else:
        log.error("port-forward to port %d failed", port, exc_info=exc)
        reason = f"internal error ({type(exc).__name__})"
    if pod:
        return f"error forwarding port {port} to pod {pod}, uid {uid}: {reason}"
    return f"error forwarding port {port}: {reason}"


Runner = Callable[[StreamIO], Coroutine[Any, Any, int]]


def failure_status(protocol: str, exc: BaseException) -> bytes:
    """The error-stream Status for a provider call that failed instead of returning an exit code."""
    if isinstance(exc, NotFound):
        return error_status(protocol, str(exc), code=404, reason="NotFound")
    if isinstance(exc, VnodeError):
        return error_status(protocol, f"error executing in container: {exc}")
    return error_status(protocol, f"error executing in container: internal error ({type(exc).__name__})")


async def run_session(channels: CommandChannels, protocol: str, runner: Runner, *, name: str) -> None:
    """Run the provider's call on `channels` until it ends (send its exit status) or the client leaves (cancel it)."""
    call = asyncio.create_task(runner(channels.io), name=f"{name} provider call")
    gone = asyncio.create_task(channels.client_gone(), name=f"{name} client watch")
    try:
        await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not call.done():
            log.debug("%s: client went away; cancelling the provider call", name)
            return
        exc = call.exception()
        if exc is None:
            body = exit_status(protocol, call.result())
        else:
            if not isinstance(exc, VnodeError):
                log.error("%s failed", name, exc_info=exc)
            body = failure_status(protocol, exc)
        await channels.finish(body)
    finally:
        for task in (call, gone):
            task.cancel()
        await asyncio.gather(call, gone, return_exceptions=True)
