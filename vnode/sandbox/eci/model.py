"""The emulator's container groups as immutable specs plus a timeline, and the `sim` runtime's outcome rules.

A group's state is never stored: it is computed from its timeline (created, pending, running) and each container's
sim outcome at the instant asked, so thousands of groups need no background task and a ManualClock drives them
exactly. This module must not parse request parameters or render responses.

The sim runtime runs nothing. A container's outcome comes from, in order:
- env `VNODE_SIM_RUN_SECONDS` (seconds from Running to exit) and `VNODE_SIM_EXIT_CODE` (default 0);
- else its command and args: `sleep N` gives N seconds, `exit M` gives exit code M;
- else it runs until the group is deleted.
A container that exits is restarted at once under restartPolicy Always, or OnFailure with a non-zero code (each run
lasts at least 1 s); otherwise it stays terminated. The group ends when every container has terminated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

RUN_SECONDS_ENV = "VNODE_SIM_RUN_SECONDS"
EXIT_CODE_ENV = "VNODE_SIM_EXIT_CODE"
_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)\b")
_EXIT = re.compile(r"\bexit\s+(\d+)\b")


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    cpu: float = 0.0
    memory: float = 0.0
    commands: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str = ""
    image_pull_policy: str = "IfNotPresent"
    ports: tuple[tuple[int, str], ...] = ()
    stdin: bool = False
    tty: bool = False

    def sim_outcome(self) -> tuple[float | None, int]:
        """(seconds from Running to exit, or None for forever; exit code)."""
        env = dict(self.env)
        text = " ".join(self.commands + self.args)
        exit_match = _EXIT.search(text)
        exit_code = int(env.get(EXIT_CODE_ENV) or (exit_match.group(1) if exit_match else 0))
        if env.get(RUN_SECONDS_ENV):
            return float(env[RUN_SECONDS_ENV]), exit_code
        sleep_match = _SLEEP.search(text)
        if sleep_match:
            return float(sleep_match.group(1)), exit_code
        return (0.0 if exit_match else None), exit_code


@dataclass(frozen=True)
class ContainerState:
    state: str  # Waiting | Running | Terminated (ECI's CurrentState.State)
    reason: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    last: ContainerState | None = None


@dataclass(frozen=True)
class ContainerGroup:
    id: str
    name: str
    seq: int  # creation order: paging cursors point into it
    region_id: str
    zone_id: str
    cpu: float
    memory: float
    restart_policy: str
    tags: tuple[tuple[str, str], ...]
    containers: tuple[ContainerSpec, ...]
    init_containers: tuple[ContainerSpec, ...]
    volumes: tuple[tuple[str, str], ...]  # (name, type)
    created: datetime
    pending_at: datetime
    running_at: datetime
    intranet_ip: str
    extra: tuple[tuple[str, str], ...] = ()  # echoed group fields: VSwitchId, SecurityGroupId, InstanceType...

    def container_state(self, spec: ContainerSpec, now: datetime) -> ContainerState:
        if now < self.pending_at:
            return ContainerState("Waiting", "Scheduling")
        if now < self.running_at:
            return ContainerState("Waiting", "ContainerCreating")
        run_seconds, exit_code = spec.sim_outcome()
        if run_seconds is None:
            return ContainerState("Running", "Started", started=self.running_at)
        reason = "Completed" if exit_code == 0 else "Error"
        restarts = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and exit_code != 0)
        if not restarts:
            end = self.running_at + timedelta(seconds=run_seconds)
            if now < end:
                return ContainerState("Running", "Started", started=self.running_at)
            return ContainerState("Terminated", reason, self.running_at, end, exit_code)
        period = max(run_seconds, 1.0)
        runs = math.floor((now - self.running_at).total_seconds() / period)
        started = self.running_at + timedelta(seconds=runs * period)
        last = None
        if runs:
            last = ContainerState("Terminated", reason, started - timedelta(seconds=period), started, exit_code)
        return ContainerState("Running", "Started", started=started, restart_count=runs, last=last)

    def ended_at(self) -> datetime | None:
        """When every container has terminated for good, or None while one may still run."""
        ends = []
        for spec in self.containers:
            run_seconds, exit_code = spec.sim_outcome()
            restarts = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and exit_code != 0)
            if run_seconds is None or restarts:
                return None
            ends.append(self.running_at + timedelta(seconds=run_seconds))
        return max(ends, default=self.running_at)

    def status(self, now: datetime) -> str:
        if now < self.pending_at:
            return "Scheduling"
        if now < self.running_at:
            return "Pending"
        end = self.ended_at()
        if end is None or now < end:
            return "Running"
        failed = any(spec.sim_outcome()[1] != 0 for spec in self.containers)
        return "Failed" if failed else "Succeeded"

    def last_transition(self, now: datetime) -> datetime:
        """When `status(now)` was entered: what `SinceSecond` windows are matched against."""
        end = self.ended_at()
        moments = [self.created, self.pending_at, self.running_at] + ([end] if end else [])
        return max(m for m in moments if m <= now)

    def events(self, now: datetime) -> list[tuple[datetime, str, str, str]]:
        """(time, type, reason, message) of what has happened by `now`, oldest first, like ECI's K8s events."""
        found = [(self.pending_at, "Normal", "Scheduled", f"Successfully assigned {self.id} to {self.zone_id}")]
        for spec in self.containers:
            found.append((self.pending_at, "Normal", "Pulling", f'pulling image "{spec.image}"'))
            found.append((self.running_at, "Normal", "Pulled", f'Successfully pulled image "{spec.image}"'))
            found.append((self.running_at, "Normal", "Created", f"Created container {spec.name}"))
            found.append((self.running_at, "Normal", "Started", f"Started container {spec.name}"))
        return [event for event in found if event[0] <= now]
