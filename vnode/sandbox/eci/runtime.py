"""The contract between the emulator's API and what runs a container group: `sim` (nothing runs) or `docker`.

The API layer (actions, the exec WebSocket) owns parameters, paging and rendering; a runtime owns what happens to a
group once created: its containers' states, their logs, exec into them and their resource usage. A runtime must not
parse request parameters or render ECI responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from vnode.providers.streams import LogOptions, StreamIO
from vnode.sandbox.eci.model import ContainerGroup, ContainerState


class ContainerNotRunning(Exception):
    """Exec into a container that is not running (ECI answers 400 IncorrectStatus)."""


class GroupRuntime(Protocol):
    async def run(self) -> None:
        """Long-lived: whatever background work the runtime needs (e.g. following the engine), until cancelled;
        cleans up everything it started in `finally`."""
        ...

    def start(self, group: ContainerGroup) -> None:
        """Begin running a newly created group; returns at once (work continues in tasks `run` owns)."""
        ...

    def stop(self, group: ContainerGroup) -> None:
        """The group was deleted: stop and remove whatever runs it; returns at once."""
        ...

    def group_status(self, group: ContainerGroup, now: datetime) -> str:
        """ECI's group Status at `now`: Scheduling, Pending, Running, Succeeded, Failed, Restarting..."""
        ...

    def container_state(self, group: ContainerGroup, container: str, now: datetime) -> ContainerState:
        ...

    def last_transition(self, group: ContainerGroup, now: datetime) -> datetime:
        """When the group last changed status: what SinceSecond windows match against."""
        ...

    async def logs(self, group: ContainerGroup, container: str, options: LogOptions) -> bytes:
        """The container's log as `options` select it (follow is ignored: ECI returns one snapshot)."""
        ...

    async def exec(self, group: ContainerGroup, container: str, command: Sequence[str], io: StreamIO) -> int:
        """Run `command` in the container with `io`'s streams; its exit code. Raises ContainerNotRunning."""
        ...
