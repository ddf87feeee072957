"""The `sim` runtime's rules: what a group that runs nothing is doing at any instant, computed from its timeline.

Nothing is stored per tick: a group's state is computed from its epochs (created, then one per restart or update)
and each container's sim outcome at the instant asked, so thousands of groups need no background task and a
ManualClock drives them exactly. A container's outcome comes from, in order:
- env `VNODE_SIM_RUN_SECONDS` (seconds from Running to exit) and `VNODE_SIM_EXIT_CODE` (default 0);
- else its command and args: `sleep N` gives N seconds, `exit M` gives exit code M;
- else it runs until the group is deleted.
A container that exits is restarted at once under restartPolicy Always, or OnFailure with a non-zero code (each run
lasts at least 1 s); otherwise it stays terminated. Init containers complete (exit 0) as the app containers start.
The group ends when every app container has terminated for good, or when its spot instance is reclaimed.
This module must not do I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec, ContainerState

RUN_SECONDS_ENV = "VNODE_SIM_RUN_SECONDS"
EXIT_CODE_ENV = "VNODE_SIM_EXIT_CODE"
_SLEEP = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)\b")
_EXIT = re.compile(r"\bexit\s+(\d+)\b")
# A container stopped by a restart, an update or a reclaimed spot instance reports what a SIGKILLed process does.
KILLED_EXIT_CODE = 137


def sim_outcome(spec: ContainerSpec) -> tuple[float | None, int]:
    """(seconds from Running to exit, or None for forever; exit code). ValueError names a bad sim variable."""
    env = dict(spec.env)
    text = " ".join(spec.commands + spec.args)
    exit_match = _EXIT.search(text)
    try:
        exit_code = int(env.get(EXIT_CODE_ENV) or (exit_match.group(1) if exit_match else 0))
        if env.get(RUN_SECONDS_ENV):
            return float(env[RUN_SECONDS_ENV]), exit_code
    except ValueError as exc:
        raise ValueError(f"{RUN_SECONDS_ENV} and {EXIT_CODE_ENV} must be numbers") from exc
    sleep_match = _SLEEP.search(text)
    if sleep_match:
        return float(sleep_match.group(1)), exit_code
    return (0.0 if exit_match else None), exit_code


def _restarts(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


@dataclass(frozen=True)
class Epoch:
    """One start of the group's containers: at creation, and again after each restart or update."""

    group: ContainerGroup  # the spec this epoch runs
    begins: datetime  # created, or when the restart/update was asked
    scheduled: datetime  # resources allocated (the first epoch only waits for it)
    running_at: datetime  # containers started
    interlude: str  # the status from `scheduled` to `running_at`: Pending, Restarting, Updating
    carried: Mapping[str, tuple[int, ContainerState | None]] = field(default_factory=dict)  # restarts, last state

    def state(self, spec: ContainerSpec, now: datetime) -> ContainerState:
        count, last = self.carried.get(spec.name, (0, None))
        if now < self.scheduled:
            return ContainerState("Waiting", "Scheduling", restart_count=count, last=last)
        if now < self.running_at:
            return ContainerState("Waiting", "ContainerCreating", restart_count=count, last=last)
        if spec in self.group.init_containers:
            return ContainerState("Terminated", "Completed", self.running_at, self.running_at, 0, count, last)
        run_seconds, exit_code = sim_outcome(spec)
        if run_seconds is None:
            return ContainerState("Running", "Started", started=self.running_at, restart_count=count, last=last)
        reason = "Completed" if exit_code == 0 else "Error"
        if not _restarts(self.group.restart_policy, exit_code):
            end = self.running_at + timedelta(seconds=run_seconds)
            if now < end:
                return ContainerState("Running", "Started", started=self.running_at, restart_count=count, last=last)
            return ContainerState("Terminated", reason, self.running_at, end, exit_code, count, last)
        period = max(run_seconds, 1.0)
        runs = math.floor((now - self.running_at).total_seconds() / period)
        started = self.running_at + timedelta(seconds=runs * period)
        if runs:
            last = ContainerState("Terminated", reason, started - timedelta(seconds=period), started, exit_code)
        return ContainerState("Running", "Started", started=started, restart_count=count + runs, last=last)

    def end(self) -> tuple[datetime, bool] | None:
        """(when every app container has terminated for good, whether one failed), or None if that never comes."""
        ends, failed = [], False
        for spec in self.group.containers:
            run_seconds, exit_code = sim_outcome(spec)
            if run_seconds is None or _restarts(self.group.restart_policy, exit_code):
                return None
            ends.append(self.running_at + timedelta(seconds=run_seconds))
            failed = failed or exit_code != 0
        return max(ends, default=self.running_at), failed

    def carry(self, at: datetime) -> dict[str, tuple[int, ContainerState | None]]:
        """Restart counts and last states for the epoch after this one, which stops every container at `at`."""
        carried: dict[str, tuple[int, ContainerState | None]] = {}
        for spec in self.group.init_containers + self.group.containers:
            state = self.state(spec, at)
            if state.state == "Waiting":
                carried[spec.name] = (state.restart_count, state.last)
            elif state.state == "Running":
                carried[spec.name] = (state.restart_count + 1, ContainerState(
                    "Terminated", "Error", state.started, at, KILLED_EXIT_CODE))
            else:
                carried[spec.name] = (state.restart_count + 1, replace_last(state))
        return carried


def replace_last(state: ContainerState) -> ContainerState:
    """`state` as a last state: without its own restart count and history."""
    return ContainerState(state.state, state.reason, state.started, state.finished, state.exit_code,
                          message=state.message)


@dataclass
class Timeline:
    epochs: list[Epoch]
    notice_at: datetime | None = None  # SpotToBeReleased
    released_at: datetime | None = None  # the spot instance is reclaimed
    directory: Path | None = None  # exec's working directory, made on first exec

    def epoch(self, now: datetime) -> Epoch:
        return next((e for e in reversed(self.epochs) if e.begins <= now), self.epochs[0])

    def final(self) -> tuple[datetime, bool] | None:
        """When the group ends (and whether Failed), as far as known now."""
        end = self.epochs[-1].end()
        if self.released_at is not None and (end is None or end[0] > self.released_at):
            return self.released_at, True
        return end

    def ended(self, now: datetime) -> tuple[datetime, bool] | None:
        final = self.final()
        return final if final is not None and final[0] <= now else None

    def reclaimed(self, now: datetime) -> bool:
        """Whether the spot instance was reclaimed by `now` while the group still ran."""
        if self.released_at is None or self.released_at > now:
            return False
        end = self.epochs[-1].end()
        return end is None or end[0] > self.released_at

    def state(self, spec: ContainerSpec, now: datetime) -> ContainerState:
        if self.reclaimed(now):
            assert self.released_at is not None
            state = self.epoch(self.released_at).state(spec, self.released_at)
            if state.state == "Terminated":
                return state
            # The instance is gone: whatever ran or waited in it was killed.
            return ContainerState("Terminated", "SpotReleased", state.started, self.released_at, KILLED_EXIT_CODE,
                                  state.restart_count, state.last)
        return self.epoch(now).state(spec, now)

    def status(self, now: datetime) -> str:
        ended = self.ended(now)
        if ended is not None:
            return "Failed" if ended[1] else "Succeeded"
        epoch = self.epoch(now)
        if now < epoch.scheduled:
            return "Scheduling"
        if now < epoch.running_at:
            return epoch.interlude
        return "Running"

    def last_transition(self, now: datetime) -> datetime:
        moments = [m for e in self.epochs for m in (e.begins, e.scheduled, e.running_at)]
        ended = self.ended(now)
        if ended is not None:
            moments.append(ended[0])
        return max((m for m in moments if m <= now), default=self.epochs[0].begins)

    def spec_at(self, name: str, moment: datetime) -> ContainerSpec | None:
        """The spec container `name` ran with at `moment` (updates change images and env)."""
        epoch = next((e for e in reversed(self.epochs) if e.running_at <= moment), self.epochs[0])
        return epoch.group.spec(name)
