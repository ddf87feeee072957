"""The contract between the emulator's API and what runs a container group: `sim` (nothing runs) or `docker`.

The API layer (actions, the exec WebSocket) owns parameters, paging and rendering; a runtime owns what happens to a
group once created: its status, its containers' states, its events, their logs and exec into them. A runtime must
not parse request parameters or render ECI responses. Unknown container names raise `vnode.errors.NotFound`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vnode.providers.streams import LogOptions, StreamIO
from vnode.sandbox.eci.model import ContainerGroup, ContainerState

# Group statuses from which RestartContainerGroup and UpdateContainerGroup are accepted (ECI's API reference).
CHANGEABLE = ("Pending", "Running")
TERMINAL = ("Succeeded", "Failed", "Expired")


class ContainerNotRunning(Exception):
    """Exec into a container that is not running (ECI answers 400 IncorrectStatus)."""


@dataclass(frozen=True)
class GroupEvent:
    at: datetime
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class GroupSnapshot:
    """Everything the describe actions show of a group at one instant."""

    status: str
    containers: Mapping[str, ContainerState]  # app and init containers, by name
    events: tuple[GroupEvent, ...]
    intranet_ip: str
    scheduled_at: datetime | None  # resources allocated (PodScheduled, StartTime)
    initialized_at: datetime | None  # init containers done, app containers started
    ready_at: datetime | None  # since when every app container runs (None unless they all do)
    ended_at: datetime | None  # Succeeded/Failed since
    last_transition: datetime


class GroupRuntime(Protocol):
    async def run(self) -> None:
        """Long-lived: whatever background work the runtime needs (e.g. following the engine), until cancelled;
        cleans up everything it started in `finally`."""
        ...

    def check(self, group: ContainerGroup) -> None:
        """Raise ValueError (its text names the parameter) if this runtime refuses `group` at create time."""
        ...

    def start(self, group: ContainerGroup) -> None:
        """Begin running a newly created group; returns at once (work continues in tasks `run` owns)."""
        ...

    def stop(self, group: ContainerGroup) -> None:
        """The group was deleted or forgotten: stop and remove whatever runs it; returns at once."""
        ...

    def restart(self, group: ContainerGroup) -> None:
        """RestartContainerGroup: status Restarting while every container restarts (RestartCount + 1)."""
        ...

    def update(self, group: ContainerGroup) -> None:
        """UpdateContainerGroup changed how `group` runs (same id): status Updating while its containers are
        recreated from the new spec."""
        ...

    def release(self, group: ContainerGroup, notice_seconds: float) -> None:
        """The spot instance is reclaimed: a SpotToBeReleased warning now, the group Failed (SpotReleased) after
        `notice_seconds`."""
        ...

    def snapshot(self, group: ContainerGroup, now: datetime) -> GroupSnapshot:
        ...

    def group_status(self, group: ContainerGroup, now: datetime) -> str:
        """ECI's group Status at `now`: Scheduling, Pending, Running, Succeeded, Failed, Restarting, Updating."""
        ...

    def container_state(self, group: ContainerGroup, container: str, now: datetime) -> ContainerState:
        ...

    def last_transition(self, group: ContainerGroup, now: datetime) -> datetime:
        """When the group last changed status: what SinceSecond windows match against."""
        ...

    def ended_at(self, group: ContainerGroup, now: datetime) -> datetime | None:
        """When the group became Succeeded or Failed, if it had by `now` (retention counts from there)."""
        ...

    async def logs(self, group: ContainerGroup, container: str, options: LogOptions) -> bytes:
        """The container's log as `options` select it (follow is ignored: ECI returns one snapshot). NotFound when
        the container (or, with `previous`, its previous instance) has not run."""
        ...

    async def exec(self, group: ContainerGroup, container: str, command: Sequence[str], io: StreamIO) -> int:
        """Run `command` in the container with `io`'s streams; its exit code. Raises ContainerNotRunning."""
        ...
