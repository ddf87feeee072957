"""The Docker provider: a virtual node's pods as containers on a Docker engine (through aiodocker).

Owns the engine client, the engine's event stream (container exits, fed to `ExitSignals`), and one `PodRunner`
task per pod; `run` starts, cancels and awaits them all and closes the client. Pods are found again by their
containers' labels (`naming`), so a restarted vnode adopts what runs instead of recreating it. Stream methods are
delegated to `DockerStreams`. Must not write pod status: it only reports through `notify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiodocker
import aiohttp

from vnode.clock import Clock
from vnode.config import DockerProviderSettings
from vnode.errors import BackendUnavailable, NotSupported
from vnode.providers.base import (
    NodeDescription,
    NodeResources,
    PodRef,
    PodStatusUpdate,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.docker import naming, spec, volumes
from vnode.providers.docker.runner import PodRunner
from vnode.providers.docker.slots import ExitSignals
from vnode.providers.docker.streams import DockerStreams
from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot

log = logging.getLogger(__name__)
_EVENT_RETRY_SECONDS, _EVENT_RETRY_MAX_SECONDS = 0.5, 10.0


class DockerProvider:
    def __init__(self, settings: DockerProviderSettings, clock: Clock, *, node_name: str) -> None:
        self._settings, self._clock, self._node = settings, clock, node_name
        self._docker: aiodocker.Docker | None = None  # made on first use: aiohttp needs a running loop
        self._streams: DockerStreams | None = None
        self._info: Mapping[str, Any] = {}
        self._signals = ExitSignals()
        self._runners: dict[str, PodRunner] = {}  # by pod UID
        self._tasks: dict[str, asyncio.Task[None]] = {}  # each runner's lifecycle, by pod UID
        self._deletions: set[asyncio.Task[None]] = set()
        self._notify: StatusCallback | None = None

    # Engine

    def _engine(self) -> aiodocker.Docker:
        if self._docker is None:
            self._docker = aiodocker.Docker(url=self._settings.host)
            self._streams = DockerStreams(self._docker, self._node, self._clock)
        return self._docker

    async def close(self) -> None:
        """Close the engine client (`run` does this when it ends)."""
        docker, self._docker, self._streams = self._docker, None, None
        if docker is not None:
            await docker.close()

    # Contract: node

    def describe(self) -> NodeDescription:
        return NodeDescription(
            provider="docker", container_runtime_version=f"docker://{self._info.get('ServerVersion', 'unknown')}",
            os_image=str(self._info.get("OperatingSystem", "")), kernel_version=str(self._info.get("KernelVersion",
                                                                                                   "")),
            architecture={"x86_64": "amd64", "aarch64": "arm64"}.get(str(self._info.get("Architecture")), "amd64"))

    def capacity(self) -> NodeResources:
        """Configured capacity, else the engine's CPUs and memory (as of the last ping), else this host's."""
        cpus = self._info.get("NCPU") or os.cpu_count() or 1
        memory = self._info.get("MemTotal") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return NodeResources(cpu=self._settings.capacity_cpu or str(cpus),
                             memory=self._settings.capacity_memory or f"{int(memory) // 1024}Ki",
                             pods=self._settings.capacity_pods)

    async def ping(self) -> None:
        with _translated():
            self._info = await self._engine().system.info()

    # Contract: pods

    async def create_pod(self, pod: ResolvedPod) -> None:
        uid = pod.ref.uid
        if uid in self._runners:
            return
        _validate(pod, self._settings)
        with _translated():
            existing = await self._summaries(uid)
            if uid in self._runners:
                return
            if existing:
                adopted = await self._adopt(pod.ref, existing)
                if adopted.status().reason != "StartInterrupted":
                    self._start(adopted)
                    return
                for container in existing:  # caught mid-start by a restart of vnode: start it afresh
                    await container.delete(force=True, v=True)
        self._start(self._runner(pod.ref, pod))

    async def update_pod(self, pod: ResolvedPod) -> None:
        runner = self._runners.get(pod.ref.uid)
        if runner is None or runner.images() == {c["name"]: c.get("image", "") for c in pod.containers}:
            return
        raise NotSupported("the Docker provider cannot change a running pod's container images")

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        runner = self._runners.get(ref.uid)
        if runner is not None and runner.terminated:
            return
        task = self._tasks.pop(ref.uid, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if runner is None:
            with _translated():
                existing = await self._summaries(ref.uid)
            if not existing:
                await asyncio.to_thread(volumes.remove, self._settings, ref.uid)
                return
            runner = await self._adopt(ref, existing)
        runner.terminated = True
        deletion = asyncio.create_task(self._terminate(runner, grace_period_seconds), name=f"delete {ref.key}")
        self._deletions.add(deletion)
        deletion.add_done_callback(self._deletions.discard)

    async def list_pods(self) -> list[PodStatusUpdate]:
        with _translated():
            by_uid: dict[str, list[Any]] = {}
            for summary in await self._engine().containers.list(all=True, filters=naming.node_filter(self._node)):
                key = naming.key_of(summary["Labels"] or {})
                if key is not None:
                    by_uid.setdefault(key.ref.uid, []).append(summary)
            updates = [replace(r.status(), events=()) for uid, r in self._runners.items() if not r.terminated]
            for uid, summaries in by_uid.items():
                if uid not in self._runners:
                    key = naming.key_of(summaries[0]["Labels"])
                    assert key is not None
                    updates.append((await self._adopt(key.ref, summaries, register=False)).status())
        return updates

    async def run(self, notify: StatusCallback) -> None:
        """Follow the engine's container exits (adopting the node's pods on every (re)connect) until cancelled;
        then cancel and await every pod task and close the engine client. Pods keep running in the engine."""
        self._notify = notify
        try:
            await self._follow_events()
        finally:
            self._notify = None
            tasks = [*self._tasks.values(), *self._deletions]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.clear()
            await self.close()

    # Streams

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        return self._stream_side().container_logs(ref, container, options)

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        return await self._stream_side().exec(ref, container, command, io)

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        return await self._stream_side().attach(ref, container, io)

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        await self._stream_side().port_forward(ref, port, stream)

    async def stats(self) -> UsageSnapshot:
        return await self._stream_side().stats()

    def _stream_side(self) -> DockerStreams:
        self._engine()
        assert self._streams is not None
        return self._streams

    # Internals

    def _push(self, update: PodStatusUpdate) -> None:
        if self._notify is not None:
            self._notify(update)

    def _runner(self, ref: PodRef, pod: ResolvedPod | None = None) -> PodRunner:
        return PodRunner(self._engine(), ref=ref, node=self._node, settings=self._settings, clock=self._clock,
                         signals=self._signals, push=self._push, pod=pod)

    async def _adopt(self, ref: PodRef, summaries: Sequence[Any], *, register: bool = True) -> PodRunner:
        runner = await PodRunner.adopt(self._engine(), summaries, ref=ref, node=self._node, settings=self._settings,
                                       clock=self._clock, signals=self._signals, push=self._push)
        if register:
            # Another call may have taken the pod over while this one read the engine.
            runner = self._runners.setdefault(ref.uid, runner)
        return runner

    def _start(self, runner: PodRunner) -> None:
        if runner.ref.uid in self._tasks:
            return
        self._runners[runner.ref.uid] = runner
        self._tasks[runner.ref.uid] = asyncio.create_task(self._run_pod(runner), name=f"pod {runner.ref.key}")

    async def _run_pod(self, runner: PodRunner) -> None:
        try:
            await runner.run()
        except Exception:
            log.exception("pod %s: its runner stopped", runner.ref.key)
        finally:
            self._tasks.pop(runner.ref.uid, None)

    async def _terminate(self, runner: PodRunner, grace_period_seconds: int) -> None:
        delay = self._settings.restart_backoff_seconds
        while True:
            try:
                await runner.terminate(grace_period_seconds)
                break
            except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
                log.warning("pod %s: cannot remove its containers yet (%s); retrying", runner.ref.key, exc)
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._settings.restart_backoff_max_seconds)
        if self._runners.get(runner.ref.uid) is runner:
            del self._runners[runner.ref.uid]

    async def _summaries(self, uid: str) -> list[Any]:
        return list(await self._engine().containers.list(all=True, filters=naming.pod_filter(self._node, uid)))

    async def _adopt_all(self) -> None:
        """Take over the node's pods the engine runs that this process does not know yet."""
        by_uid: dict[str, list[Any]] = {}
        for summary in await self._engine().containers.list(all=True, filters=naming.node_filter(self._node)):
            key = naming.key_of(summary["Labels"] or {})
            if key is not None and key.ref.uid not in self._runners:
                by_uid.setdefault(key.ref.uid, []).append(summary)
        for summaries in by_uid.values():
            key = naming.key_of(summaries[0]["Labels"])
            assert key is not None
            if key.ref.uid in self._runners:
                continue
            runner = await self._adopt(key.ref, summaries)
            log.info("adopted pod %s (uid %s) from the engine", key.ref.key, key.ref.uid)
            if runner.status().phase in ("Succeeded", "Failed"):
                self._push(runner.status())
            else:
                self._start(runner)

    async def _follow_events(self) -> None:
        """The engine's `die` events for this node's containers wake the runners waiting on them."""
        events: Any = self._engine().events  # aiodocker's events module is untyped
        subscriber = events.subscribe(create_task=False)
        delay = _EVENT_RETRY_SECONDS
        filters = json.dumps({"type": ["container"], "event": ["die"], "label": [f"{naming.LABEL_NODE}={self._node}"]})
        while True:
            reader = asyncio.create_task(events.run(filters=filters), name="docker events")
            try:
                await self._adopt_all()
                self._signals.wake_all()  # exits during a gap in the stream
                while (event := await subscriber.get()) is not None:
                    delay = _EVENT_RETRY_SECONDS
                    self._signals.exited(str((event.get("Actor") or {}).get("ID") or event.get("id") or ""))
            except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
                log.warning("docker events: %s; reconnecting in %.1f s", exc, delay)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            await self._clock.sleep(delay)
            delay = min(delay * 2, _EVENT_RETRY_MAX_SECONDS)


def _validate(pod: ResolvedPod, settings: DockerProviderSettings) -> None:
    """Everything `create_pod` can refuse up front (InvalidPod names the field), before any engine call."""
    spec.validate_pod(pod, settings)
    volumes.check(pod, settings)
    paths = {name: "/" for name in pod.volumes}
    roles: tuple[tuple[str, naming.Role], ...] = (("initContainers", "init"), ("containers", "app"))
    for list_name, role in roles:
        for index, container in enumerate(pod.spec.get(list_name) or []):
            spec.container_config(pod, container, where=f"spec.{list_name}[{index}]", role=role, attempt=0,
                                  node="", sandbox_id="", volume_paths=paths, settings=settings)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Engine and connection failures as BackendUnavailable (retryable), the cause chained."""
    try:
        yield
    except aiodocker.DockerError as exc:
        raise BackendUnavailable(f"docker engine: {exc.message}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise BackendUnavailable(f"docker engine unreachable: {exc}") from exc
