"""One pod's life on the Docker engine: images, sandbox, init containers in order, app containers, restarts, stop.

A `PodRunner` is owned by `DockerProvider`, which runs its `run` as a task, feeds it container exits (`ExitSignals`)
and calls `terminate` on delete. It reports every change as a `PodStatusUpdate` through `push`. It must not keep
state the engine cannot give back: an adopted pod (`PodRunner.adopt`) is rebuilt from its containers' labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import aiodocker
import aiohttp

from vnode.clock import Clock
from vnode.config import DockerProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import (
    ContainerState,
    ContainerStatus,
    PodPhase,
    PodRef,
    PodStatusUpdate,
    ProviderEvent,
    ResolvedPod,
)
from vnode.providers.docker import naming, spec, status, volumes
from vnode.util.tasks import first_of

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Push = Callable[[PodStatusUpdate], None]
# Exits normally arrive from the engine's event stream; this bounds how long a missed event goes unnoticed.
RESYNC_SECONDS = 5.0
# The kubelet forgets a container's crash-loop backoff once it ran this long without failing.
_BACKOFF_RESET_SECONDS = 600.0


class ExitSignals:
    """Container ID → an asyncio.Event set when the engine reports the container died."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def expect(self, container_id: str) -> asyncio.Event:
        return self._events.setdefault(container_id, asyncio.Event())

    def forget(self, container_id: str) -> None:
        self._events.pop(container_id, None)

    def exited(self, container_id: str) -> None:
        if container_id in self._events:
            self._events[container_id].set()

    def wake_all(self) -> None:
        """After a gap in the event stream: every waiter re-inspects its containers."""
        for event in self._events.values():
            event.set()


@dataclass
class _Slot:
    """A container of the pod spec and its instances in the engine (`current` and the one before it)."""

    name: str
    role: Literal["init", "app"]
    image: str
    container: Mapping[str, Any] | None = None  # the spec (None for an adopted pod: restarts clone `current`)
    where: str = ""
    current: Mapping[str, Any] | None = None  # engine inspect of the newest instance
    previous: Mapping[str, Any] | None = None
    attempt: int = 0
    waiting: ContainerState | None = None  # a waiting state the engine cannot show (pull errors, back-off)
    restart_at: float | None = None  # monotonic time of the next restart
    backoff: float = 0.0
    done: bool = False  # terminated and will not restart


class PodRunner:
    def __init__(self, docker: aiodocker.Docker, *, ref: PodRef, node: str, settings: DockerProviderSettings,
                 clock: Clock, signals: ExitSignals, push: Push, pod: ResolvedPod | None = None) -> None:
        self._docker, self.ref, self._node, self._settings = docker, ref, node, settings
        self._clock, self._signals, self._push_to = clock, signals, push
        self._pod = pod
        self._policy = spec.restart_policy(pod) if pod else "Always"
        self._init = [_Slot(c["name"], "init", c.get("image", ""), c, f"spec.initContainers[{i}]")
                      for i, c in enumerate(pod.init_containers)] if pod else []
        self._apps = [_Slot(c["name"], "app", c.get("image", ""), c, f"spec.containers[{i}]")
                      for i, c in enumerate(pod.containers)] if pod else []
        self._sandbox: Mapping[str, Any] | None = None
        self._volume_paths: dict[str, str] = {}
        self._events: list[ProviderEvent] = []
        self._phase: PodPhase = "Pending"
        self._reason = self._message = ""
        self._start_time: datetime | None = None
        self.terminated = False

    # Status

    def status(self) -> PodStatusUpdate:
        return PodStatusUpdate(
            ref=self.ref, phase=self._phase, reason=self._reason, message=self._message,
            containers=tuple(self._slot_status(s) for s in self._apps),
            init_containers=tuple(self._slot_status(s) for s in self._init),
            pod_ip=status.pod_ip(self._sandbox, self._settings.network) if self._sandbox else "",
            start_time=self._start_time, events=tuple(self._events))

    def _slot_status(self, slot: _Slot) -> ContainerStatus:
        if slot.waiting is not None:
            last = status.container_state(slot.current) if slot.current else None
            return ContainerStatus(slot.name, slot.waiting, restart_count=slot.attempt, image=slot.image,
                                   last_state=last if last and last.kind == "terminated" else None)
        if slot.current is not None:
            return status.container_status(slot.name, slot.current, restart_count=slot.attempt,
                                           previous=slot.previous)
        initializing = slot.role == "app" and not all(s.done for s in self._init)
        return ContainerStatus(slot.name, ContainerState(
            "waiting", reason="PodInitializing" if initializing else "ContainerCreating"), image=slot.image)

    def images(self) -> dict[str, str]:
        """The app containers' images, by container name."""
        return {slot.name: slot.image for slot in self._apps}

    def _push(self) -> None:
        update = self.status()
        self._events.clear()
        self._push_to(update)

    def _event(self, kind: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self._events.append(ProviderEvent(kind, reason, message))

    # Lifecycle

    async def run(self) -> None:
        """Start the pod (or pick up an adopted one) and look after its containers until it is terminal. Engine
        errors are reported as Events and the step is retried with backoff (every step can be repeated)."""
        delay = self._settings.restart_backoff_seconds
        while True:
            try:
                if self._pod is not None and self._phase == "Pending":
                    await self._start(self._pod)
                while not self.terminated and self._phase not in ("Succeeded", "Failed"):
                    await self._supervise_once()
                return
            except InvalidPod as exc:
                self._phase, self._reason, self._message = "Failed", "CreateContainerConfigError", str(exc)
                self._event("Warning", "Failed", f"Error: {exc}")
                self._push()
                return
            except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
                message = exc.message if isinstance(exc, aiodocker.DockerError) else str(exc)
                log.warning("pod %s: engine error, retrying in %.1f s: %s", self.ref.key, delay, message)
                self._event("Warning", "Failed", f"Error: {message}")
                self._push()
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._settings.restart_backoff_max_seconds)

    async def _start(self, pod: ResolvedPod) -> None:
        self._start_time = self._start_time or self._clock.now()
        self._push()
        self._volume_paths = await asyncio.to_thread(volumes.prepare, pod, self._settings)
        if self._sandbox is None:
            self._sandbox = await self._start_sandbox(pod)
            self._push()
        for slot in self._init:
            while not slot.done:
                await self._start_instance(slot)
                await self._await_exit(slot)
                if self._phase == "Failed":
                    return
        for slot in self._apps:
            if slot.current is None:
                await self._start_instance(slot)
        self._phase = "Running"
        self._push()

    async def _start_sandbox(self, pod: ResolvedPod) -> Mapping[str, Any]:
        image = self._settings.pause_image
        if not await self._image_present(image):
            await self._docker.images.pull(image)
        key = naming.ContainerKey(self.ref, "sandbox", "", 0)
        config = spec.sandbox_config(pod, node=self._node, settings=self._settings)
        container = await self._create(config, naming.container_name(self._node, key))
        await container.start()
        return await container.show()

    async def _start_instance(self, slot: _Slot) -> None:
        """Pull (as the policy says) and start the container's next instance; keep the one before for `logs -p`."""
        await self._ensure_image(slot)
        attempt = slot.attempt + 1 if slot.current is not None else slot.attempt
        key = naming.ContainerKey(self.ref, slot.role, slot.name, attempt)
        if slot.container is not None and self._pod is not None and self._sandbox is not None:
            config = spec.container_config(self._pod, slot.container, where=slot.where, role=slot.role,
                                           attempt=attempt, node=self._node, sandbox_id=self._sandbox["Id"],
                                           volume_paths=self._volume_paths, settings=self._settings)
        else:
            assert slot.current is not None, "an adopted container restarts from its last instance"
            config = spec.clone_config(slot.current, node=self._node, key=key)
        created = await self._create(config, naming.container_name(self._node, key))
        self._event("Normal", "Created", f"Created container {slot.name}")
        exited = self._signals.expect(created.id)
        try:
            await created.start()
            self._event("Normal", "Started", f"Started container {slot.name}")
        except aiodocker.DockerError as exc:
            # The engine leaves a container whose process could not start in state "created" with the error.
            self._event("Warning", "Failed", f"Error: {exc.message}")
            exited.set()
        if slot.previous is not None:
            await self._remove(str(slot.previous["Id"]))
        slot.previous, slot.current = slot.current, await created.show()
        slot.attempt, slot.waiting, slot.restart_at = attempt, None, None
        self._push()

    async def _await_exit(self, slot: _Slot) -> None:
        assert slot.current is not None
        exited = self._signals.expect(str(slot.current["Id"]))
        while not status.is_exited(slot.current):
            await first_of(exited.wait(), self._clock.sleep(RESYNC_SECONDS))
            exited.clear()
            slot.current = await self._inspect(slot.current)
        self._exited(slot)
        if slot.restart_at is not None:
            await self._clock.sleep(max(0.0, slot.restart_at - self._clock.monotonic()))

    async def _supervise_once(self) -> None:
        """Wait for an exit or a due restart, then act on every container that exited."""
        now = self._clock.monotonic()
        for slot in self._apps:
            if slot.restart_at is not None and slot.restart_at <= now:
                await self._start_instance(slot)
        waits = [self._signals.expect(str(s.current["Id"])) for s in self._apps
                 if s.current is not None and s.restart_at is None and not s.done]
        due = [s.restart_at - now for s in self._apps if s.restart_at is not None]
        await first_of(*(w.wait() for w in waits), self._clock.sleep(min([RESYNC_SECONDS, *due])))
        for slot in self._apps:
            if slot.current is None or slot.done or slot.restart_at is not None:
                continue
            self._signals.expect(str(slot.current["Id"])).clear()
            slot.current = await self._inspect(slot.current)
            if status.is_exited(slot.current):
                self._exited(slot)
        self._phase = self._app_phase()
        self._push()

    def _exited(self, slot: _Slot) -> None:
        """Apply restartPolicy to a container that just ended (init containers restart unless Never)."""
        assert slot.current is not None
        state = status.container_state(slot.current)
        code = state.exit_code or 0
        restart = self._policy == "Always" and slot.role == "app" or (self._policy != "Never" and code != 0)
        self._signals.forget(str(slot.current["Id"]))
        if not restart:
            slot.done = True
            if slot.role == "init" and code != 0:
                self._phase = "Failed"
            self._push()
            return
        ran = (state.finished_at - state.started_at).total_seconds() if state.finished_at and state.started_at \
            else 0.0
        if ran >= _BACKOFF_RESET_SECONDS:
            slot.backoff = 0.0
        # The kubelet restarts a container the first time at once, then backs off 10 s, 20 s, ... up to 5 min.
        delay = slot.backoff
        slot.backoff = min(self._settings.restart_backoff_max_seconds,
                           slot.backoff * 2 if slot.backoff else self._settings.restart_backoff_seconds)
        slot.restart_at = self._clock.monotonic() + delay
        if delay > 0:
            pod = f"{self.ref.name}_{self.ref.namespace}({self.ref.uid})"
            slot.waiting = ContainerState("waiting", reason="CrashLoopBackOff", message=(
                f"back-off {delay:g}s restarting failed container={slot.name} pod={pod}"))
            self._event("Warning", "BackOff", f"Back-off restarting failed container {slot.name} in pod {pod}")
        self._push()

    def _app_phase(self) -> PodPhase:
        if self._phase in ("Succeeded", "Failed"):
            return self._phase
        if self._apps and all(s.done for s in self._apps):
            codes = [status.container_state(s.current).exit_code for s in self._apps if s.current is not None]
            return "Succeeded" if all(code == 0 for code in codes) else "Failed"
        return self._phase

    # Images

    async def _ensure_image(self, slot: _Slot) -> None:
        """imagePullPolicy, and the kubelet's ErrImagePull → ImagePullBackOff cycle while a pull fails."""
        policy = spec.pull_policy(slot.container) if slot.container is not None else "IfNotPresent"
        image, delay = slot.image, self._settings.image_pull_backoff_seconds
        while True:
            present = await self._image_present(image)
            if present and policy != "Always":
                if slot.current is None:
                    self._event("Normal", "Pulled", f'Container image "{image}" already present on machine')
                return
            if policy == "Never":
                message = f'Container image "{image}" is not present with pull policy of Never'
                slot.waiting = ContainerState("waiting", reason="ErrImageNeverPull", message=message)
                self._event("Warning", "ErrImageNeverPull", message)
            else:
                self._event("Normal", "Pulling", f'Pulling image "{image}"')
                self._push()
                began = self._clock.monotonic()
                try:
                    await self._docker.images.pull(image)
                except aiodocker.DockerError as exc:
                    slot.waiting = ContainerState("waiting", reason="ErrImagePull", message=exc.message)
                    self._event("Warning", "Failed", f'Failed to pull image "{image}": {exc.message}')
                else:
                    took = self._clock.monotonic() - began
                    self._event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s')
                    return
            self._push()
            await self._clock.sleep(self._settings.image_pull_backoff_seconds)
            message = f'Back-off pulling image "{image}"'
            slot.waiting = ContainerState("waiting", reason="ImagePullBackOff", message=message)
            self._event("Normal", "BackOff", message)
            self._event("Warning", "Failed", "Error: ImagePullBackOff")
            self._push()
            await self._clock.sleep(delay)
            delay = min(delay * 2, self._settings.image_pull_backoff_max_seconds)

    async def _image_present(self, image: str) -> bool:
        try:
            await self._docker.images.inspect(image)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # Engine helpers

    async def _create(self, config: Obj, name: str) -> aiodocker.containers.DockerContainer:
        """Create `name`, replacing a leftover of an earlier try of the same step (names are per attempt)."""
        with contextlib.suppress(aiodocker.DockerError):
            await self._docker.containers.container(name).delete(force=True, v=True)
        return await self._docker.containers.create(config, name=name)

    async def _inspect(self, inspect: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return await self._docker.containers.container(str(inspect["Id"])).show()
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
            # Removed behind our back: report it as the kubelet does a container it cannot find.
            return {**inspect, "State": {"Status": "exited", "ExitCode": 137, "Error": "container not found"}}

    async def _remove(self, container_id: str) -> None:
        self._signals.forget(container_id)
        with contextlib.suppress(aiodocker.DockerError):
            await self._docker.containers.container(container_id).delete(force=True, v=True)

    # Deletion

    async def terminate(self, grace_period_seconds: int) -> None:
        """SIGTERM every container (SIGKILL after the grace period), report them terminated, remove them all
        and the pod's volume directories."""
        self.terminated = True
        summaries = await self._docker.containers.list(all=True, filters=naming.pod_filter(self._node, self.ref.uid))
        stops = []
        for container in summaries:
            key = naming.key_of(container["Labels"] or {})
            if container["State"] == "running" and key is not None:
                if key.role != "sandbox":
                    self._event("Normal", "Killing", f"Stopping container {key.container}")
                stops.append((key.role, container))
        await asyncio.gather(*(c.stop(t=grace_period_seconds) for role, c in stops if role != "sandbox"),
                             return_exceptions=True)
        await asyncio.gather(*(c.stop(t=0) for role, c in stops if role == "sandbox"), return_exceptions=True)
        for slot in (*self._init, *self._apps):
            slot.waiting, slot.restart_at = None, None
            if slot.current is not None:
                slot.current = await self._inspect(slot.current)
            else:
                slot.current = _never_started(slot)
        codes = [status.container_state(s.current).exit_code for s in self._apps if s.current is not None]
        self._phase = "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"
        self._push()
        await self._remove_all(summaries)

    async def _remove_all(self, summaries: Sequence[Any]) -> None:
        for container in summaries:
            await self._remove(container.id)
        # A create that was in flight when the pod's task was cancelled may land after the first listing.
        for container in await self._docker.containers.list(
                all=True, filters=naming.pod_filter(self._node, self.ref.uid)):
            await self._remove(container.id)
        await asyncio.to_thread(volumes.remove, self._settings, self.ref.uid)

    # Adoption

    @classmethod
    async def adopt(cls, docker: aiodocker.Docker, summaries: Sequence[Any], *, ref: PodRef, node: str,
                    settings: DockerProviderSettings, clock: Clock, signals: ExitSignals,
                    push: Push) -> PodRunner:
        """A runner for a pod found in the engine, from its containers' labels and inspects."""
        runner = cls(docker, ref=ref, node=node, settings=settings, clock=clock, signals=signals, push=push)
        instances: dict[tuple[str, str], list[tuple[int, Mapping[str, Any]]]] = {}
        for summary in summaries:
            labels = dict(summary["Labels"] or {})
            key = naming.key_of(labels)
            if key is None:
                continue
            inspect = await docker.containers.container(summary.id).show()
            if key.role == "sandbox":
                runner._sandbox = inspect
                runner._policy = labels.get(naming.LABEL_RESTART_POLICY, "Always")
                runner._start_time = status.parse_time(inspect["State"].get("StartedAt"))
            else:
                instances.setdefault((key.role, key.container), []).append((key.attempt, inspect))
        for (role, name), found in sorted(instances.items(), key=lambda item: min(
                i["Created"] for _, i in item[1])):
            found.sort(key=lambda pair: pair[0], reverse=True)
            slot = _Slot(name, "init" if role == "init" else "app", str(found[0][1]["Config"].get("Image", "")),
                         current=found[0][1], previous=found[1][1] if len(found) > 1 else None, attempt=found[0][0])
            (runner._init if role == "init" else runner._apps).append(slot)
            if status.is_exited(slot.current or {}):
                code = status.container_state(found[0][1]).exit_code
                slot.done = role == "init" and code == 0
        if runner._sandbox is None or not runner._apps or not all(s.done for s in runner._init):
            # Caught mid-start (vnode stopped before every container existed): the spec is not in the engine.
            runner._phase, runner._reason = "Failed", "StartInterrupted"
            runner._message = "vnode restarted while the pod was starting"
        else:
            runner._phase = "Running"
            for slot in runner._apps:
                if slot.current is not None and status.is_exited(slot.current):
                    slot.done = False
                    runner._exited(slot)
            runner._phase = runner._app_phase()
        runner._events.clear()
        return runner


def _never_started(slot: _Slot) -> Mapping[str, Any]:
    """A container the pod's deletion caught before it existed: terminated, so the deletion can finish."""
    return {"Config": {"Image": slot.image}, "State": {
        "Status": "exited", "ExitCode": 137, "Error": "The container was not started before the pod was deleted"}}

