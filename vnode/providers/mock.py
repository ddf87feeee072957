"""The in-memory provider: pods "run" with no processes, for trying vnode and for testing the controllers.

Pods start after `start_delay_seconds` (init containers complete at once, app containers run and are ready);
images in `fail_images` fail to pull like a kubelet reports it; the first `transient_create_failures` creates fail
with a retryable error. A container runs until the pod is deleted unless its env sets `VNODE_MOCK_RUN_SECONDS`
(then it exits with `VNODE_MOCK_EXIT_CODE`, default 0) and the pod's restartPolicy decides what follows.
`set_healthy(False)` makes every call fail as an unreachable backend would. hostPath volumes are refused.

Streams (see `mock_streams`): a starting container prints its env `VNODE_MOCK_LOG` (one line per line), then
`tick <n>` every `VNODE_MOCK_LOG_EVERY_SECONDS` if set; attach echoes its input like `cat`; every port echoes;
exec runs the command on this host, in a per-pod directory (`VNODE_POD_DIR`) under `work_dir` (default: a
temporary directory removed when `run` ends).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from vnode import __version__
from vnode.clock import Clock
from vnode.config import MockProviderSettings
from vnode.errors import BackendUnavailable, InvalidPod
from vnode.providers.base import (
    ContainerState,
    ContainerStatus,
    NodeDescription,
    NodeResources,
    PodPhase,
    PodRef,
    PodStatusUpdate,
    ProviderEvent,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.logbuffer import LogStream
from vnode.providers.mock_streams import MockStreams
from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot
from vnode.util.tasks import first_of

RUN_SECONDS_ENV = "VNODE_MOCK_RUN_SECONDS"
EXIT_CODE_ENV = "VNODE_MOCK_EXIT_CODE"


@dataclass
class _MockPod:
    pod: ResolvedPod
    phase: PodPhase = "Pending"
    containers: dict[str, ContainerStatus] = field(default_factory=dict)
    init_containers: dict[str, ContainerStatus] = field(default_factory=dict)
    start_time: datetime | None = None
    pod_ip: str = ""
    events: list[ProviderEvent] = field(default_factory=list)
    deleted: bool = False


class MockProvider:
    def __init__(self, settings: MockProviderSettings, clock: Clock, *, work_dir: Path | None = None) -> None:
        self._settings = settings
        self._clock = clock
        self._streams = MockStreams(clock, work_dir=work_dir)
        self._pods: dict[str, _MockPod] = {}  # by pod UID
        self._notify: StatusCallback | None = None
        self._healthy = True
        self._create_failures_left = settings.transient_create_failures
        self._timers: list[tuple[float, int, str, str, str]] = []  # (due, seq, uid, action, container)
        self._sequence = itertools.count()
        self._ips = itertools.count(2)
        self._timer_added = asyncio.Event()
        # Every contract call as (method, pod key), so tests can see which calls crossed the boundary.
        self.calls: list[tuple[str, str]] = []

    def resolved(self, uid: str) -> ResolvedPod | None:
        """The pod as the controller handed it over (env and volumes resolved), while the mock runs it."""
        state = self._pods.get(uid)
        return state.pod if state else None

    # Contract

    def describe(self) -> NodeDescription:
        return NodeDescription(provider="mock", container_runtime_version=f"mock://{__version__}",
                               os_image="vnode mock provider", kernel_version="")

    def capacity(self) -> NodeResources:
        return NodeResources(cpu=self._settings.capacity_cpu, memory=self._settings.capacity_memory,
                             pods=self._settings.capacity_pods)

    def set_healthy(self, healthy: bool) -> None:
        self._healthy = healthy

    async def ping(self) -> None:
        self._check_health()

    def _check_health(self) -> None:
        if not self._healthy:
            raise BackendUnavailable("mock backend is switched off (set_healthy(False))")

    async def create_pod(self, pod: ResolvedPod) -> None:
        self.calls.append(("create_pod", pod.ref.key))
        self._check_health()
        if pod.ref.uid in self._pods:
            return
        for index, volume in enumerate(pod.spec.get("volumes") or []):
            if "hostPath" in volume:
                raise InvalidPod("hostPath volumes are not supported by the mock provider",
                                 field=f"spec.volumes[{index}].hostPath")
        if self._create_failures_left > 0:
            self._create_failures_left -= 1
            raise BackendUnavailable("mock backend: injected transient create failure")
        state = _MockPod(_slim(pod))
        waiting = ContainerState("waiting", reason="ContainerCreating")
        state.init_containers = {c["name"]: ContainerStatus(c["name"], waiting, image=c.get("image", ""))
                                 for c in pod.init_containers}
        state.containers = {c["name"]: ContainerStatus(c["name"], waiting, image=c.get("image", ""))
                            for c in pod.containers}
        self._pods[pod.ref.uid] = state
        self._streams.pod_created(state.pod)
        self._push(state)
        self._after(self._settings.start_delay_seconds, pod.ref.uid, "start")

    async def update_pod(self, pod: ResolvedPod) -> None:
        """A changed container image restarts that container with the new image, as a kubelet does."""
        self.calls.append(("update_pod", pod.ref.key))
        self._check_health()
        state = self._pods.get(pod.ref.uid)
        if state is None:
            return
        old_images = {c["name"]: c.get("image") for c in state.pod.containers}
        state.pod = _slim(pod)
        self._streams.pod_updated(state.pod)
        for container in pod.containers:
            name = container["name"]
            if old_images.get(name) != container.get("image") and name in state.containers:
                current = state.containers[name]
                state.containers[name] = replace(current, image=container.get("image", ""),
                                                 restart_count=current.restart_count + 1,
                                                 last_state=current.state, state=self._running())
                self._streams.container_started(pod.ref.uid, name)
        self._push(state)

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        self.calls.append(("delete_pod", ref.key))
        self._check_health()
        state = self._pods.pop(ref.uid, None)
        if state is None:
            return
        state.deleted = True
        self._streams.pod_deleted(ref.uid)
        now = self._clock.now()
        for statuses in (state.init_containers, state.containers):
            for name, current in statuses.items():
                if current.state.kind != "terminated":
                    started = current.state.started_at
                    statuses[name] = replace(current, ready=False, state=ContainerState(
                        "terminated", reason="Completed", exit_code=0, started_at=started, finished_at=now))
        state.phase = "Succeeded" if all(
            c.state.exit_code == 0 for c in state.containers.values()) else "Failed"
        self._push(state)

    async def list_pods(self) -> list[PodStatusUpdate]:
        self._check_health()
        return [self._status(state) for state in self._pods.values()]

    async def run(self, notify: StatusCallback) -> None:
        """Fire timers (starts and exits) until cancelled; own the streams' background tasks meanwhile."""
        self._notify = notify
        try:
            async with self._streams.running():
                await self._fire_timers()
        finally:
            self._notify = None

    async def _fire_timers(self) -> None:
        while True:
            self._timer_added.clear()
            if not self._timers:
                await self._timer_added.wait()
                continue
            delay = self._timers[0][0] - self._clock.monotonic()
            if delay > 0:
                await first_of(self._clock.sleep(delay), self._timer_added.wait())
                continue
            _, _, uid, action, container = heapq.heappop(self._timers)
            state = self._pods.get(uid)
            if state is not None and not state.deleted:
                self._fire(state, action, container)

    # Streams (mock_streams)

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        return self._streams.container_logs(ref, container, options)

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        return await self._streams.exec(ref, container, command, io)

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        return await self._streams.attach(ref, container, io)

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        await self._streams.port_forward(ref, port, stream)

    async def stats(self) -> UsageSnapshot:
        return await self._streams.stats()

    def append_log(self, uid: str, container: str, data: bytes, stream: LogStream = "stdout") -> None:
        """Write to a running container's log as if it printed `data` (for tests)."""
        self._streams.append_log(uid, container, data, stream)

    # Simulation

    def _after(self, seconds: float, uid: str, action: str, container: str = "") -> None:
        heapq.heappush(self._timers, (self._clock.monotonic() + seconds, next(self._sequence), uid, action,
                                      container))
        self._timer_added.set()

    def _running(self) -> ContainerState:
        return ContainerState("running", started_at=self._clock.now())

    def _fire(self, state: _MockPod, action: str, container: str) -> None:
        if action == "start":
            self._start(state)
        elif action == "exit":
            self._exit(state, container)
        self._push(state)

    def _start(self, state: _MockPod) -> None:
        pod = state.pod
        failing = [c for c in pod.init_containers + pod.containers if c.get("image") in self._settings.fail_images]
        if failing:
            image = failing[0].get("image", "")
            name = failing[0]["name"]
            statuses = state.init_containers if name in state.init_containers else state.containers
            statuses[name] = replace(statuses[name], state=ContainerState(
                "waiting", reason="ImagePullBackOff", message=f'Back-off pulling image "{image}"'))
            state.events.append(ProviderEvent("Warning", "Failed", f'Failed to pull image "{image}": '
                                              "mock provider: image configured to fail"))
            return
        now = self._clock.now()
        state.start_time = now
        number = next(self._ips)
        state.pod_ip = f"10.244.{number // 250}.{number % 250 + 2}"
        for name, current in state.init_containers.items():
            state.init_containers[name] = replace(current, ready=True, state=ContainerState(
                "terminated", reason="Completed", exit_code=0, started_at=now, finished_at=now))
            self._streams.container_started(pod.ref.uid, name)
            self._streams.container_exited(pod.ref.uid, name, 0)
        for container in pod.containers:
            name = container["name"]
            state.containers[name] = replace(state.containers[name], ready=True, started=True,
                                             state=self._running())
            self._streams.container_started(pod.ref.uid, name)
            seconds = _env_value(pod.env, name, RUN_SECONDS_ENV)
            if seconds is not None:
                self._after(float(seconds), pod.ref.uid, "exit", name)
            state.events.append(ProviderEvent("Normal", "Started", f"Started container {name}"))
        state.phase = "Running"

    def _exit(self, state: _MockPod, name: str) -> None:
        pod = state.pod
        code = int(_env_value(pod.env, name, EXIT_CODE_ENV) or 0)
        current = state.containers[name]
        finished = ContainerState("terminated", reason="Completed" if code == 0 else "Error", exit_code=code,
                                  started_at=current.state.started_at, finished_at=self._clock.now())
        policy = pod.spec.get("restartPolicy", "Always")
        self._streams.container_exited(pod.ref.uid, name, code)
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            self._streams.container_started(pod.ref.uid, name)
            state.containers[name] = replace(current, restart_count=current.restart_count + 1, last_state=finished,
                                             state=self._running())
            self._after(float(_env_value(pod.env, name, RUN_SECONDS_ENV) or 0), pod.ref.uid, "exit", name)
            return
        state.containers[name] = replace(current, ready=False, state=finished)
        if all(c.state.kind == "terminated" for c in state.containers.values()):
            failed = any(c.state.exit_code for c in state.containers.values())
            state.phase = "Failed" if failed else "Succeeded"

    def _status(self, state: _MockPod) -> PodStatusUpdate:
        return PodStatusUpdate(
            ref=state.pod.ref, phase=state.phase, containers=tuple(state.containers.values()),
            init_containers=tuple(state.init_containers.values()), pod_ip=state.pod_ip,
            start_time=state.start_time, events=tuple(state.events))

    def _push(self, state: _MockPod) -> None:
        update = self._status(state)
        state.events.clear()
        if self._notify is not None:
            self._notify(update)


def _slim(pod: ResolvedPod) -> ResolvedPod:
    """Keep only what the simulation reads, so the mock does not hold a second copy of every pod."""
    spec = pod.spec
    kept = {k: spec[k] for k in ("containers", "initContainers", "restartPolicy", "volumes") if k in spec}
    meta = {k: pod.pod["metadata"].get(k) for k in ("name", "namespace", "uid")}
    return replace(pod, pod={"metadata": meta, "spec": kept})


def _env_value(env: Mapping[str, tuple[Any, ...]], container: str, name: str) -> str | None:
    for var in env.get(container, ()):
        if var.name == name:
            return str(var.value)
    return None
