"""`SimRuntime`: container groups that run nothing; states, events and logs follow `sim_timeline`'s rules.

Logs: each run of a container prints its env `VNODE_SIM_LOG` (lines separated by "\\n") the moment it starts, served
with the kubelet's reading rules (`providers.logbuffer.ContainerLog`). Exec runs the command as a host process
(`providers.mock_exec.run_command`: real exit codes, stdin and terminals) in a per-group directory, shared by the
group's containers like a workspace and removed with the group, while the container is Running. It owns those
directories and nothing else; it must not parse parameters or render responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from vnode.clock import Clock
from vnode.errors import NotFound
from vnode.providers.logbuffer import ContainerLog
from vnode.providers.mock_exec import run_command
from vnode.providers.mock_streams import POD_DIR_ENV
from vnode.providers.streams import LogOptions, StreamIO
from vnode.sandbox.eci.model import ContainerGroup, ContainerState
from vnode.sandbox.eci.runtime import ContainerNotRunning, GroupEvent, GroupSnapshot
from vnode.sandbox.eci.sim_timeline import Epoch, Timeline, sim_outcome

LOG_ENV = "VNODE_SIM_LOG"


@dataclass(frozen=True)
class SimTimings:
    scheduling_seconds: float = 1.0  # Scheduling → Pending: resources allocated
    pending_seconds: float = 2.0  # Pending → Running: image pulled, containers started
    restart_seconds: float = 2.0  # how long Restarting / Updating lasts


class _At:
    """A clock stopped at one instant: a run's log lines are all written as it starts."""

    def __init__(self, moment: datetime) -> None:
        self._moment = moment

    def now(self) -> datetime:
        return self._moment

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimRuntime:
    def __init__(self, clock: Clock, timings: SimTimings = SimTimings()) -> None:
        self._clock = clock
        self._timings = timings
        self._timelines: dict[str, Timeline] = {}  # by group id
        self._temp_root: Path | None = None  # holds exec directories; made on first exec, removed by `run`

    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            for timeline in self._timelines.values():
                timeline.directory = None
            if self._temp_root is not None:
                shutil.rmtree(self._temp_root, ignore_errors=True)
                self._temp_root = None

    # Lifecycle

    def check(self, group: ContainerGroup) -> None:
        for spec in group.containers:
            sim_outcome(spec)

    def start(self, group: ContainerGroup) -> None:
        created = group.created
        scheduled = created + timedelta(seconds=self._timings.scheduling_seconds)
        running = scheduled + timedelta(seconds=self._timings.pending_seconds)
        self._timelines.setdefault(group.id, Timeline([Epoch(group, created, scheduled, running, "Pending")]))

    def stop(self, group: ContainerGroup) -> None:
        timeline = self._timelines.pop(group.id, None)
        if timeline is not None and timeline.directory is not None:
            shutil.rmtree(timeline.directory, ignore_errors=True)

    def restart(self, group: ContainerGroup) -> None:
        self._next_epoch(group, "Restarting")

    def update(self, group: ContainerGroup) -> None:
        self._next_epoch(group, "Updating")

    def release(self, group: ContainerGroup, notice_seconds: float) -> None:
        timeline = self._timeline(group)
        now = self._clock.now()
        timeline.notice_at, timeline.released_at = now, now + timedelta(seconds=notice_seconds)

    def _next_epoch(self, group: ContainerGroup, interlude: str) -> None:
        timeline = self._timeline(group)
        now = self._clock.now()
        carried = timeline.epoch(now).carry(now)
        running = now + timedelta(seconds=self._timings.restart_seconds)
        timeline.epochs.append(Epoch(group, now, now, running, interlude, carried))

    # State

    def snapshot(self, group: ContainerGroup, now: datetime) -> GroupSnapshot:
        timeline = self._timeline(group)
        epoch = timeline.epoch(now)
        status = timeline.status(now)
        states = {spec.name: timeline.state(spec, now) for spec in epoch.group.init_containers + epoch.group.containers}
        scheduled = timeline.epochs[0].scheduled
        running = all(states[spec.name].state == "Running" for spec in epoch.group.containers)
        ended = timeline.ended(now)
        return GroupSnapshot(
            status=status, containers=states, events=tuple(self._events(timeline, now)),
            intranet_ip=group.intranet_ip if now >= scheduled else "",
            scheduled_at=scheduled if now >= scheduled else None,
            initialized_at=epoch.running_at if now >= epoch.running_at else None,
            ready_at=epoch.running_at if status == "Running" and running else None,
            ended_at=ended[0] if ended else None, last_transition=timeline.last_transition(now))

    def group_status(self, group: ContainerGroup, now: datetime) -> str:
        return self._timeline(group).status(now)

    def container_state(self, group: ContainerGroup, container: str, now: datetime) -> ContainerState:
        timeline = self._timeline(group)
        spec = timeline.epoch(now).group.spec(container)
        if spec is None:
            raise NotFound(f'container "{container}" not found in container group "{group.name}"')
        return timeline.state(spec, now)

    def last_transition(self, group: ContainerGroup, now: datetime) -> datetime:
        return self._timeline(group).last_transition(now)

    def ended_at(self, group: ContainerGroup, now: datetime) -> datetime | None:
        ended = self._timeline(group).ended(now)
        return ended[0] if ended else None

    def _timeline(self, group: ContainerGroup) -> Timeline:
        timeline = self._timelines.get(group.id)
        if timeline is None:
            raise NotFound(f"container group {group.id} is not known to the sim runtime")
        return timeline

    def _events(self, timeline: Timeline, now: datetime) -> list[GroupEvent]:
        """ECI's events for what has happened by `now`, oldest first."""
        found: list[GroupEvent] = []
        for index, epoch in enumerate(timeline.epochs):
            specs = epoch.group.init_containers + epoch.group.containers
            if index == 0:
                found.append(GroupEvent(epoch.scheduled, "Normal", "Scheduled",
                                        f"Successfully assigned {epoch.group.id} to {epoch.group.zone_id}"))
            before = timeline.epochs[index - 1].group if index else None
            for spec in specs:
                if index:
                    found.append(GroupEvent(epoch.begins, "Normal", "Killing", f"Stopping container {spec.name}"))
                old = before.spec(spec.name) if before is not None else None
                if old is None or old.image != spec.image:
                    found.append(GroupEvent(epoch.scheduled, "Normal", "Pulling", f'pulling image "{spec.image}"'))
                    found.append(GroupEvent(epoch.running_at, "Normal", "Pulled",
                                            f'Successfully pulled image "{spec.image}"'))
                found.append(GroupEvent(epoch.running_at, "Normal", "Created", f"Created container {spec.name}"))
                found.append(GroupEvent(epoch.running_at, "Normal", "Started", f"Started container {spec.name}"))
        if timeline.notice_at is not None and timeline.released_at is not None:
            minutes = (timeline.released_at - timeline.notice_at).total_seconds() / 60
            found.append(GroupEvent(timeline.notice_at, "Warning", "SpotToBeReleased",
                                    f"Spot ECI will be released in {minutes:g} minutes"))
            if timeline.reclaimed(now):
                found.append(GroupEvent(timeline.released_at, "Warning", "SpotReleased",
                                        "The spot instance was reclaimed and its containers were stopped"))
        found.sort(key=lambda event: event.at)
        return [event for event in found if event.at <= now]

    # Streams

    async def logs(self, group: ContainerGroup, container: str, options: LogOptions) -> bytes:
        timeline = self._timeline(group)
        state = self.container_state(group, container, self._clock.now())
        run = state.last if options.previous else (state if state.state != "Waiting" else None)
        if run is None or run.started is None:
            if options.previous:
                raise NotFound(f'previous terminated container "{container}" in pod "{group.name}" not found')
            raise NotFound(f'container "{container}" in pod "{group.name}" is waiting to start: {state.reason}')
        spec = timeline.spec_at(container, run.started)
        log = ContainerLog(_At(run.started))
        text = dict(spec.env).get(LOG_ENV, "") if spec is not None else ""
        if text:
            log.append((text if text.endswith("\n") else text + "\n").encode())
        log.finish()
        chunks = [chunk async for chunk in log.read(replace(options, follow=False))]
        return b"".join(chunks)

    async def exec(self, group: ContainerGroup, container: str, command: Sequence[str], io: StreamIO) -> int:
        timeline = self._timeline(group)
        state = self.container_state(group, container, self._clock.now())
        if state.state != "Running":
            raise ContainerNotRunning(f'container "{container}" of container group "{group.name}" is not running '
                                      f"({state.state})")
        spec = timeline.epoch(self._clock.now()).group.spec(container)
        directory = self._directory(timeline, group)
        # Host PATH and HOME win: the command runs on this host, where the image's paths do not exist.
        env = dict(spec.env) if spec is not None else {}
        env.update(PATH=os.environ.get("PATH", os.defpath), HOME=os.environ.get("HOME", str(directory)))
        env[POD_DIR_ENV] = str(directory)
        return await run_command(command, io, cwd=directory, env=env)

    def _directory(self, timeline: Timeline, group: ContainerGroup) -> Path:
        if timeline.directory is None:
            if self._temp_root is None:
                self._temp_root = Path(tempfile.mkdtemp(prefix="vnode-eci-sim-"))
            timeline.directory = self._temp_root / group.id
            with contextlib.suppress(FileExistsError):
                timeline.directory.mkdir(parents=True)
        return timeline.directory

