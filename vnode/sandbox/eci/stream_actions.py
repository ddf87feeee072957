"""DescribeContainerLog and ExecContainerCommand: the emulator's streaming actions (eci-wire.md §1, §2).

`EciStreamActions.handlers` joins the emulator's action table; `exec_socket` is the `/exec/` route the returned
WebSocketUri points at. Both handlers validate parameters, check the container and ask the group runtime; they
must not know how the runtime runs anything, nor speak WebSocket (that is `exec_ws`). Behaviour beyond the docs:
- Out-of-range Tail, LimitBytes, SinceSeconds and Command sizes are refused with 400 InvalidParameter.ValueExceeded
  [inferred]; StartTime with SinceSeconds with InvalidParameter (a kubelet takes one of them) [inferred].
- An unknown container is 404 InvalidContainerName.NotFound [unverified: the code is ours].
- A `Command` that is not a JSON array runs as one word, as a bare `/monitor.sh` was seen to [obs].
- Sync returns stdout only (stderr is dropped) and at most 1 MiB of it [derived; no exit code, as ECI gives none].
- HttpUrl names a console page the emulator does not serve.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from vnode.clock import Clock, parse_rfc3339
from vnode.errors import NotFound
from vnode.providers.streams import LogOptions, ResizeQueue, StreamIO
from vnode.sandbox.eci import params as p
from vnode.sandbox.eci.actions import Handler
from vnode.sandbox.eci.errors import EciApiError, invalid
from vnode.sandbox.eci.exec_ws import ExecSocket, ExecTickets
from vnode.sandbox.eci.model import ContainerGroup
from vnode.sandbox.eci.runtime import ContainerNotRunning, GroupRuntime
from vnode.sandbox.eci.store import GroupStore

MAX_LOG_BYTES = 1024 * 1024  # LimitBytes' maximum and the cap on Content
MAX_TAIL, DEFAULT_TAIL = 2000, 500
MAX_COMMAND_ITEMS, MAX_COMMAND_ITEM_CHARS = 20, 256


def exceeded(name: str, why: str) -> EciApiError:
    return EciApiError("InvalidParameter.ValueExceeded", f'The specified parameter "{name}" is out of range: {why}')


def bounded(params: p.Params, name: str, *, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None or value in ("", "None"):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise invalid(name, f"{value!r} is not an integer") from exc
    if not low <= number <= high:
        raise exceeded(name, f"must be between {low} and {high}")
    return number


def command_words(params: p.Params) -> tuple[str, ...]:
    text = p.required(params, "Command")
    try:
        words = json.loads(text)
    except ValueError:
        words = [text]  # not JSON: one word (eci-wire.md §1: a bare "/monitor.sh" ran)
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        raise invalid("Command", "must be a JSON array of strings")
    if len(words) > MAX_COMMAND_ITEMS or any(len(w) > MAX_COMMAND_ITEM_CHARS for w in words):
        raise exceeded("Command", f"at most {MAX_COMMAND_ITEMS} items of at most {MAX_COMMAND_ITEM_CHARS} "
                       "characters each")
    return tuple(words)


@dataclass
class _Collected:
    """Sync mode's stdout (kept up to the cap) and a sink for its stderr."""

    limit: int
    data: bytearray

    async def write(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if room > 0:
            self.data += chunk[:room]


class EciStreamActions:
    def __init__(self, store: GroupStore, runtime: GroupRuntime, clock: Clock, *, endpoint: Callable[[], str],
                 token_seconds: float = 30.0, idle_timeout_seconds: float = 60.0) -> None:
        self._store = store
        self._runtime = runtime
        self._clock = clock
        self._endpoint = endpoint  # the emulator's http://host:port, known once it listens
        self.tickets = ExecTickets(clock, token_seconds=token_seconds)
        self.exec_socket = ExecSocket(store, runtime, self.tickets, idle_timeout_seconds=idle_timeout_seconds)
        self.handlers: dict[str, Handler] = {
            "DescribeContainerLog": self.describe_container_log,
            "ExecContainerCommand": self.exec_container_command,
        }

    def _container(self, params: p.Params) -> tuple[ContainerGroup, str, str]:
        """The group, container name and its state (ECI's CurrentState.State) now."""
        group = self._store.get(p.required(params, "ContainerGroupId"))
        name = p.required(params, "ContainerName")
        try:
            state = self._runtime.container_state(group, name, self._clock.now())
        except NotFound as exc:
            raise EciApiError("InvalidContainerName.NotFound", f"The specified container {name} does not exist in "
                              f"container group {group.id}.", http_status=404) from exc
        return group, name, state.state

    async def describe_container_log(self, params: p.Params) -> dict[str, Any]:
        group, name, _ = self._container(params)
        tail = bounded(params, "Tail", low=0, high=MAX_TAIL)
        limit = bounded(params, "LimitBytes", low=1, high=MAX_LOG_BYTES)
        since_seconds = bounded(params, "SinceSeconds", low=1, high=2**31 - 1)
        start = params.get("StartTime") or None
        if start is not None and since_seconds is not None:
            raise invalid("StartTime", "StartTime and SinceSeconds exclude each other")
        since = None
        if start is not None:
            try:
                since = parse_rfc3339(start)
            except ValueError as exc:
                raise invalid("StartTime", f"{start!r} is not an RFC 3339 time") from exc
            if since.tzinfo is None:
                raise invalid("StartTime", f"{start!r} has no time zone")
        elif since_seconds is not None:
            since = self._clock.now() - timedelta(seconds=since_seconds)
        options = LogOptions(previous=p.boolean(params, "LastTime"), timestamps=p.boolean(params, "Timestamps"),
                             since_time=since, tail_lines=DEFAULT_TAIL if tail is None else tail,
                             limit_bytes=limit)
        try:
            content = await self._runtime.logs(group, name, options)
        except (NotFound, ContainerNotRunning) as exc:
            # Not started yet, or no previous instance: a kubelet refuses with 400 (the code here is ours).
            raise EciApiError("IncorrectStatus", str(exc)) from exc
        return {"ContainerName": name, "Content": content[:MAX_LOG_BYTES].decode(errors="replace")}

    async def exec_container_command(self, params: p.Params) -> dict[str, Any]:
        command = command_words(params)
        tty, stdin, sync = p.boolean(params, "TTY"), p.boolean(params, "Stdin", True), p.boolean(params, "Sync")
        if sync and tty:
            raise invalid("Sync", "Sync requires TTY=false")
        group, name, state = self._container(params)
        if state != "Running":
            raise EciApiError("IncorrectStatus", f"The current status of the container {name} ({state}) does not "
                              "support this action.")
        if sync:
            return {"SyncResponse": await self._run_sync(group, name, command)}
        token = self.tickets.issue(group.id, name, command, tty=tty, stdin=stdin)
        base = self._endpoint()
        return {"WebSocketUri": "ws://" + base.removeprefix("http://") + f"/exec/?s={token}",
                "HttpUrl": f"{base}/terminal?param={token}"}

    async def _run_sync(self, group: ContainerGroup, name: str, command: tuple[str, ...]) -> str:
        stdout, stderr = _Collected(MAX_LOG_BYTES, bytearray()), _Collected(0, bytearray())
        io = StreamIO(stdin=None, stdout=stdout, stderr=stderr, tty=False, resizes=ResizeQueue())
        try:
            await self._runtime.exec(group, name, command, io)
        except ContainerNotRunning as exc:
            raise EciApiError("IncorrectStatus", str(exc)) from exc
        except NotFound as exc:  # e.g. the executable is not there: runc's words, as a kubelet reports them
            raise EciApiError("InvalidParameter", str(exc)) from exc
        return stdout.data.decode(errors="replace")
