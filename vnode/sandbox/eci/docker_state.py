"""What the docker runtime knows of one group: the Docker provider's latest pod status, mapped to ECI's vocabulary.

`DockerGroup` holds a group's current run (pod UID), the provider's last `PodStatusUpdate` for it, restart counts
and last states carried over restarts, events, and the moments its status changed. ECI's status comes from the pod
phase (Pending, Running, Succeeded, Failed), overridden while a restart or update starts the new run (Restarting,
Updating), and by a refusal or a reclaimed spot instance (Failed). Pure bookkeeping: no I/O, no tasks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from vnode.providers import base
from vnode.sandbox.eci.model import ContainerGroup, ContainerState
from vnode.sandbox.eci.runtime import TERMINAL, GroupEvent, GroupSnapshot

_KINDS = {"waiting": "Waiting", "running": "Running", "terminated": "Terminated"}
_PHASES = {"Pending": "Pending", "Running": "Running", "Succeeded": "Succeeded", "Failed": "Failed"}


def eci_state(state: base.ContainerState) -> ContainerState:
    kind = _KINDS[state.kind]
    reason = state.reason or ("Started" if kind == "Running" else "")
    return ContainerState(kind, reason, state.started_at, state.finished_at, state.exit_code, message=state.message)


@dataclass
class DockerGroup:
    group: ContainerGroup
    uid: str
    created: datetime
    epoch: int = 0
    update: base.PodStatusUpdate | None = None
    interlude: str = ""  # Restarting / Updating until the new run is up
    carried: dict[str, tuple[int, ContainerState | None]] = field(default_factory=dict)
    frozen: dict[str, ContainerState] | None = None  # containers as they ended when the instance went away
    failure: str = ""  # why the group failed without its containers failing (refused, spot reclaimed)
    submitted: bool = False  # the provider has the current run
    deleted: bool = False
    events: list[GroupEvent] = field(default_factory=list)
    transitions: list[tuple[datetime, str]] = field(default_factory=list)
    scheduled_at: datetime | None = None
    initialized_at: datetime | None = None
    ready_at: datetime | None = None
    ended_at: datetime | None = None
    ops: deque[Callable[[], Awaitable[None]]] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None

    def status(self) -> str:
        if self.failure:
            return "Failed"
        phase = self.update.phase if self.update is not None else ""
        if self.interlude and phase not in ("Running", "Succeeded", "Failed"):
            return self.interlude
        if not self.submitted and self.update is None:
            return "Scheduling"
        return _PHASES.get(phase, "Pending")

    def states(self) -> dict[str, ContainerState]:
        if self.frozen is not None:
            return dict(self.frozen)
        found: dict[str, ContainerState] = {}
        reported = {} if self.update is None else {
            s.name: s for s in self.update.init_containers + self.update.containers}
        for spec in self.group.init_containers + self.group.containers:
            count, last = self.carried.get(spec.name, (0, None))
            status = reported.get(spec.name)
            if status is None:
                reason = "Scheduling" if self.status() == "Scheduling" else "ContainerCreating"
                found[spec.name] = ContainerState("Waiting", reason, restart_count=count, last=last)
                continue
            state = eci_state(status.state)
            previous = eci_state(status.last_state) if status.last_state is not None else last
            found[spec.name] = ContainerState(state.state, state.reason, state.started, state.finished,
                                              state.exit_code, count + status.restart_count, previous, state.message)
        return found

    def note(self, now: datetime) -> None:
        """Record the status at `now` if it changed, and the moments the describe actions show."""
        status = self.status()
        if not self.transitions or self.transitions[-1][1] != status:
            self.transitions.append((now, status))
            if status in TERMINAL and self.ended_at is None:
                self.ended_at = now
        if self.update is not None and self.update.phase in ("Running", "Succeeded", "Failed"):
            self.initialized_at = self.initialized_at or now
            self.interlude = ""
        states = self.states()
        running = all(states[c.name].state == "Running" for c in self.group.containers)
        self.ready_at = (self.ready_at or now) if status == "Running" and running else None

    def event(self, at: datetime, kind: str, reason: str, message: str) -> None:
        self.events.append(GroupEvent(at, kind, reason, message))

    def snapshot(self, now: datetime) -> GroupSnapshot:
        status = self.status()
        ip = (self.update.pod_ip if self.update is not None else "") or (
            self.group.intranet_ip if self.scheduled_at is not None else "")
        return GroupSnapshot(
            status=status, containers=self.states(), events=tuple(e for e in self.events if e.at <= now),
            intranet_ip=ip, scheduled_at=self.scheduled_at, initialized_at=self.initialized_at,
            ready_at=self.ready_at, ended_at=self.ended_at if status in TERMINAL else None,
            last_transition=self.transitions[-1][0] if self.transitions else self.created)

    def carry_over(self, at: datetime) -> dict[str, tuple[int, ContainerState | None]]:
        """Restart counts (+1) and last states for the next run, which replaces every container at `at`."""
        carried: dict[str, tuple[int, ContainerState | None]] = {}
        for name, state in self.states().items():
            if state.state == "Waiting":
                carried[name] = (state.restart_count, state.last)
            elif state.state == "Running":
                carried[name] = (state.restart_count + 1, ContainerState("Terminated", "Error", state.started, at,
                                                                         137))
            else:
                carried[name] = (state.restart_count + 1, ContainerState(
                    state.state, state.reason, state.started, state.finished, state.exit_code, message=state.message))
        return carried
