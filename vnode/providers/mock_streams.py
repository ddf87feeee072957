"""The stream side of the mock provider: logs, exec, attach, port-forward and usage stats of its simulated pods.

It owns, per pod, a host directory (the cwd of every exec in the pod, so its containers share files like an
emptyDir workspace; removed with the pod) and, per container, a `ContainerLog` for the current and the previous
instance (the kubelet keeps one previous). `MockProvider` tells it when containers start and exit; it must not
decide any pod or container state itself. The main process of a mock container behaves like `cat`: input written
through attach is its output. Every port echoes what it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vnode.clock import Clock
from vnode.errors import NotFound
from vnode.providers.base import PodRef, ResolvedPod
from vnode.providers.logbuffer import ContainerLog, LogStream
from vnode.providers.mock_exec import run_command
from vnode.providers.streams import (
    ByteSink,
    ByteSource,
    ByteStream,
    ContainerUsage,
    LogOptions,
    PodUsage,
    StreamClosed,
    StreamIO,
    UsageSnapshot,
)

LOG_ENV = "VNODE_MOCK_LOG"
LOG_EVERY_ENV = "VNODE_MOCK_LOG_EVERY_SECONDS"
POD_DIR_ENV = "VNODE_POD_DIR"
CPU_NANOSECONDS_PER_SECOND = 1_000_000  # the mock burns 1 ms of CPU per second running (0.001 cores)
WORKING_SET_BYTES = 8 * 1024 * 1024
_FOLLOW_NEW = LogOptions(follow=True, tail_lines=0)  # what attach shows: output from now on


@dataclass
class _Instance:
    log: ContainerLog
    started_at: datetime
    exit_code: int | None = None
    ticker: asyncio.Task[None] | None = None


@dataclass
class _Container:
    current: _Instance | None = None
    previous: _Instance | None = None


@dataclass
class _Pod:
    pod: ResolvedPod
    containers: dict[str, _Container] = field(default_factory=dict)
    directory: Path | None = None


class MockStreams:
    def __init__(self, clock: Clock, *, work_dir: Path | None = None, log_max_bytes: int | None = None) -> None:
        self._clock = clock
        self._work_dir = work_dir
        self._temp_root: Path | None = None  # made on first use when no work_dir was given; removed by `running`
        self._log_max_bytes = log_max_bytes
        self._pods: dict[str, _Pod] = {}  # by pod UID
        self._group: asyncio.TaskGroup | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Own the log tickers while the provider runs; afterwards stop them and remove the pod directories."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                try:
                    yield
                finally:
                    self._group = None
                    for pod in self._pods.values():
                        for container in pod.containers.values():
                            _stop_ticker(container.current)
        finally:
            for pod in self._pods.values():
                _remove(pod.directory)
                pod.directory = None
            _remove(self._temp_root)
            self._temp_root = None

    # Told by the simulation

    def pod_created(self, pod: ResolvedPod) -> None:
        names = [c["name"] for c in pod.init_containers + pod.containers]
        self._pods.setdefault(pod.ref.uid, _Pod(pod, {name: _Container() for name in names}))

    def pod_updated(self, pod: ResolvedPod) -> None:
        state = self._pods.get(pod.ref.uid)
        if state is not None:
            state.pod = pod

    def container_started(self, uid: str, name: str) -> None:
        """A new instance of the container runs: the last one becomes `previous`; VNODE_MOCK_LOG is its output."""
        state = self._pods.get(uid)
        if state is None:
            return
        container = state.containers.setdefault(name, _Container())
        if container.current is not None:
            self._end(container.current, None)
            container.previous = container.current
        log = ContainerLog(self._clock) if self._log_max_bytes is None else ContainerLog(
            self._clock, max_bytes=self._log_max_bytes)
        instance = container.current = _Instance(log, self._clock.now())
        env = {var.name: var.value for var in state.pod.env.get(name, ())}
        if env.get(LOG_ENV):
            text = env[LOG_ENV]
            log.append((text if text.endswith("\n") else text + "\n").encode())
        every = _positive_float(env.get(LOG_EVERY_ENV))
        if every is not None and self._group is not None:
            instance.ticker = self._group.create_task(self._tick(log, every),
                                                      name=f"mock log ticks {state.pod.ref.key}/{name}")

    def container_exited(self, uid: str, name: str, exit_code: int) -> None:
        state = self._pods.get(uid)
        container = state.containers.get(name) if state else None
        if container is not None and container.current is not None:
            self._end(container.current, exit_code)

    def pod_deleted(self, uid: str) -> None:
        state = self._pods.pop(uid, None)
        if state is None:
            return
        for container in state.containers.values():
            if container.current is not None:
                self._end(container.current, 0)  # the mock reports deleted containers as Completed
        _remove(state.directory)

    def append_log(self, uid: str, container: str, data: bytes, stream: LogStream = "stdout") -> None:
        """Write to the current instance's log, as if the container printed `data` (for tests)."""
        state = self._pods.get(uid)
        entry = state.containers.get(container) if state else None
        if state is None or entry is None or entry.current is None:
            raise NotFound(f'container "{container}" of pod UID {uid} has not started')
        entry.current.log.append(data, stream)

    # The Provider's stream calls

    async def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        state, entry = self._container(ref, container)
        instance = entry.previous if options.previous else entry.current
        if instance is None and options.previous:
            raise NotFound(f'previous terminated container "{container}" in pod "{ref.name}" not found')
        if instance is None:
            raise NotFound(f'container "{container}" in pod "{ref.name}" is waiting to start: ContainerCreating')
        async with contextlib.aclosing(instance.log.read(options)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        state, _ = self._running(ref, container)
        directory = self._directory(state)
        # Host PATH and HOME win: the command runs on this host, where the image's paths do not exist.
        env = {var.name: var.value for var in state.pod.env.get(container, ())}
        env.update(PATH=os.environ.get("PATH", os.defpath), HOME=os.environ.get("HOME", str(directory)))
        env[POD_DIR_ENV] = str(directory)
        return await run_command(command, io, cwd=directory, env=env)

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        _, instance = self._running(ref, container)
        async with asyncio.TaskGroup() as group:
            feeder = None if io.stdin is None else group.create_task(
                _feed(io.stdin, instance.log), name=f"attach stdin {ref.key}/{container}")
            await _copy_log(instance.log, io.stdout)  # until the instance ends; stdin's EOF does not end it
            if feeder is not None:
                feeder.cancel()
        return instance.exit_code or 0

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        state = self._pod(ref)
        if not any(_is_running(c.current) for c in state.containers.values()):
            raise NotFound(f'pod "{ref.key}" is not running')
        try:
            while chunk := await stream.read():
                await stream.write(chunk)
            await stream.close_write()
        except StreamClosed:
            return

    async def stats(self) -> UsageSnapshot:
        now = self._clock.now()
        pods: list[PodUsage] = []
        for state in self._pods.values():
            usages = []
            for name, container in state.containers.items():
                instance = container.current
                if instance is None or not _is_running(instance):
                    continue
                running_seconds = max(0.0, (now - instance.started_at).total_seconds())
                usages.append(ContainerUsage(
                    name=name, start_time=instance.started_at,
                    # Never 0: metrics-server drops a pod with a zero value.
                    cpu_usage_core_nanoseconds=int(CPU_NANOSECONDS_PER_SECOND * (1 + running_seconds)),
                    cpu_usage_nano_cores=CPU_NANOSECONDS_PER_SECOND, memory_working_set_bytes=WORKING_SET_BYTES,
                    memory_usage_bytes=WORKING_SET_BYTES, logs_used_bytes=instance.log.size_bytes))
            if usages:
                pods.append(PodUsage(state.pod.ref, min(u.start_time for u in usages), tuple(usages)))
        return UsageSnapshot(time=now, pods=tuple(pods))

    # Lookups

    def _pod(self, ref: PodRef) -> _Pod:
        state = self._pods.get(ref.uid)
        if state is None:
            raise NotFound(f'pod "{ref.key}" not found')
        return state

    def _container(self, ref: PodRef, container: str) -> tuple[_Pod, _Container]:
        state = self._pod(ref)
        entry = state.containers.get(container)
        if entry is None:
            raise NotFound(f'container "{container}" not found in pod "{ref.key}"')
        return state, entry

    def _running(self, ref: PodRef, container: str) -> tuple[_Pod, _Instance]:
        state, entry = self._container(ref, container)
        if entry.current is None or not _is_running(entry.current):
            raise NotFound(f'container "{container}" in pod "{ref.name}" is not running')
        return state, entry.current

    def _directory(self, state: _Pod) -> Path:
        if state.directory is None:
            if self._work_dir is not None:
                root = self._work_dir
            else:
                if self._temp_root is None:
                    self._temp_root = Path(tempfile.mkdtemp(prefix="vnode-mock-"))
                root = self._temp_root
            ref = state.pod.ref
            state.directory = root / f"{ref.namespace}_{ref.name}_{ref.uid}"
            state.directory.mkdir(parents=True, exist_ok=True)
        return state.directory

    # Simulation of the containers' processes

    def _end(self, instance: _Instance, exit_code: int | None) -> None:
        if not instance.log.finished:
            instance.exit_code = exit_code
        _stop_ticker(instance)
        instance.log.finish()

    async def _tick(self, log: ContainerLog, every: float) -> None:
        count = 0
        while True:
            await self._clock.sleep(every)
            count += 1
            log.append(f"tick {count}\n".encode())


def _is_running(instance: _Instance | None) -> bool:
    return instance is not None and not instance.log.finished


def _stop_ticker(instance: _Instance | None) -> None:
    if instance is not None and instance.ticker is not None:
        instance.ticker.cancel()
        instance.ticker = None


async def _feed(stdin: ByteSource, log: ContainerLog) -> None:
    with contextlib.suppress(StreamClosed):
        while chunk := await stdin.read():
            log.append(chunk)  # the main process is `cat`: its input is its output


async def _copy_log(log: ContainerLog, sink: ByteSink | None) -> None:
    async with contextlib.aclosing(log.read(_FOLLOW_NEW)) as chunks:
        async for chunk in chunks:
            if sink is not None:
                try:
                    await sink.write(chunk)
                except StreamClosed:
                    sink = None


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


def _remove(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
