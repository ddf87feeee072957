"""One pod's life on the Docker engine: sandbox, init containers in order, app containers and their probes,
restarts, stop.

A `PodRunner` is owned by `DockerProvider`, which runs its `run` as a task, feeds it container exits (`ExitSignals`)
and calls `terminate` on delete. It reports every change as a `PodStatusUpdate` through `push`. Images are pulled
by `images.ImagePuller`; each running app container's probes are a task of this runner (`probes.ContainerProbes`),
cancelled with the instance. It must not keep state the engine cannot give back: an adopted pod (`PodRunner.adopt`,
read by `adopt.read_pod`) is rebuilt from its containers' labels, its probes too (`probes.probe_label`). The sandbox
is started by `sandbox.start_sandbox`, whose failures become `FailedCreatePodSandBox` Events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
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
from vnode.providers.docker import naming, spec, status, teardown, volumes
from vnode.providers.docker.adopt import read_pod
from vnode.providers.docker.health import PodProbes
from vnode.providers.docker.images import ImagePuller
from vnode.providers.docker.sandbox import create_container, start_sandbox
from vnode.providers.docker.slots import ExitSignals, Slot, never_started, slot_status
from vnode.util.tasks import first_of

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Push = Callable[[PodStatusUpdate], None]
# Exits normally arrive from the engine's event stream; this bounds how long a missed event goes unnoticed.
RESYNC_SECONDS = 5.0
# The kubelet forgets a container's crash-loop backoff once it ran this long without failing.
_BACKOFF_RESET_SECONDS = 600.0


class PodRunner:
    def __init__(self, docker: aiodocker.Docker, *, ref: PodRef, node: str, settings: DockerProviderSettings,
                 clock: Clock, signals: ExitSignals, push: Push, pod: ResolvedPod | None = None) -> None:
        self._docker, self.ref, self._node, self._settings = docker, ref, node, settings
        self._clock, self._signals, self._push_to = clock, signals, push
        self._pod = pod
        self._policy = spec.restart_policy(pod) if pod else "Always"
        # How long a container killed for a probe has to stop.
        self._grace = spec.grace_period(pod) if pod else spec.DEFAULT_GRACE_SECONDS
        self._init = [Slot(c["name"], "init", c.get("image", ""), c, f"spec.initContainers[{i}]")
                      for i, c in enumerate(pod.init_containers)] if pod else []
        self._apps = [Slot(c["name"], "app", c.get("image", ""), c, f"spec.containers[{i}]")
                      for i, c in enumerate(pod.containers)] if pod else []
        self._sandbox: Mapping[str, Any] | None = None
        self._volume_paths: dict[str, str] = {}
        self._events: list[ProviderEvent] = []
        self._phase: PodPhase = "Pending"
        self._reason = self._message = ""
        self._start_time: datetime | None = None
        self.terminated = False
        self._images = ImagePuller(docker, settings=settings, clock=clock, auths=pod.registry_auth if pod else (),
                                   event=self._event, push=self._push)
        self._probes = PodProbes(docker, pod=ref.key, clock=clock, event=self._event, push=self._push)

    # Status

    def status(self) -> PodStatusUpdate:
        return PodStatusUpdate(
            ref=self.ref, phase=self._phase, reason=self._reason, message=self._message,
            containers=tuple(self._slot_status(s) for s in self._apps),
            init_containers=tuple(self._slot_status(s) for s in self._init),
            pod_ip=self._pod_ip(),
            start_time=self._start_time, events=tuple(self._events))

    def _slot_status(self, slot: Slot) -> ContainerStatus:
        ready, started = self._probes.verdict(slot)
        return slot_status(slot, ready=ready, started=started,
                           initializing=slot.role == "app" and not all(s.done for s in self._init))

    def _pod_ip(self) -> str:
        return status.pod_ip(self._sandbox, self._settings.network) if self._sandbox else ""

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
        try:
            if self._pod is None:  # adopted: its running containers' probes start again, from their labels
                self._probes.resume(self._apps, self._sandbox, self._pod_ip())
                self._push()
            await self._run()
        finally:
            await self._probes.stop()

    async def _run(self) -> None:
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
            self._sandbox = await start_sandbox(self._docker, self._images, pod, node=self._node,
                                                settings=self._settings, clock=self._clock, failed=self._no_sandbox)
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

    def _no_sandbox(self, message: str) -> None:
        log.warning("pod %s: cannot create its sandbox (retrying): %s", self.ref.key, message)
        self._event("Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {message}")
        self._push()

    async def _start_instance(self, slot: Slot) -> None:
        """Pull (as the policy says) and start the container's next instance; keep the one before for `logs -p`."""
        policy = spec.pull_policy(slot.container) if slot.container is not None else "IfNotPresent"
        await self._images.ensure(slot.image, policy, waiting=lambda state: setattr(slot, "waiting", state),
                                  first=slot.current is None)
        await self._probes.stop(slot.name)
        attempt = slot.attempt + 1 if slot.current is not None else slot.attempt
        key = naming.ContainerKey(self.ref, slot.role, slot.name, attempt)
        if slot.container is not None and self._pod is not None and self._sandbox is not None:
            config = spec.container_config(self._pod, slot.container, where=slot.where, role=slot.role,
                                           attempt=attempt, node=self._node, sandbox_id=self._sandbox["Id"],
                                           volume_paths=self._volume_paths, settings=self._settings)
        else:
            assert slot.current is not None, "an adopted container restarts from its last instance"
            config = spec.clone_config(slot.current, node=self._node, key=key)
        created = await create_container(self._docker, config, naming.container_name(self._node, key))
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
            await teardown.remove_container(self._docker, str(slot.previous["Id"]), self._signals.forget)
        slot.previous, slot.current = slot.current, await created.show()
        slot.attempt, slot.waiting, slot.restart_at = attempt, None, None
        self._probes.start(slot, self._sandbox, self._pod_ip())
        self._push()

    async def _await_exit(self, slot: Slot) -> None:
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
        """Wait for an exit, a due restart or a probe's kill, then act on every container that exited."""
        await self._probes.kill_requested(self._apps, self._grace)
        now = self._clock.monotonic()
        for slot in self._apps:
            if slot.restart_at is not None and slot.restart_at <= now:
                await self._start_instance(slot)
        waits = [self._signals.expect(str(s.current["Id"])) for s in self._apps
                 if s.current is not None and s.restart_at is None and not s.done]
        due = [s.restart_at - now for s in self._apps if s.restart_at is not None]
        await first_of(*(w.wait() for w in waits), self._probes.wake.wait(),
                       self._clock.sleep(min([RESYNC_SECONDS, *due])))
        for slot in self._apps:
            if slot.current is None or slot.done or slot.restart_at is not None:
                continue
            self._signals.expect(str(slot.current["Id"])).clear()
            slot.current = await self._inspect(slot.current)
            if status.is_exited(slot.current):
                await self._probes.stop(slot.name)
                self._exited(slot)
        self._phase = self._app_phase()
        self._push()

    def _exited(self, slot: Slot) -> None:
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

    # Engine helpers

    async def _inspect(self, inspect: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            return await self._docker.containers.container(str(inspect["Id"])).show()
        except aiodocker.DockerError as exc:
            if exc.status != 404:
                raise
            # Removed behind our back: report it as the kubelet does a container it cannot find.
            return {**inspect, "State": {"Status": "exited", "ExitCode": 137, "Error": "container not found"}}

    # Deletion

    async def terminate(self, grace_period_seconds: int) -> None:
        """SIGTERM every container (SIGKILL after the grace period), report them terminated, remove them all
        and the pod's volume directories."""
        self.terminated = True
        await self._probes.stop()
        summaries = await teardown.stop_pod(self._docker, node=self._node, ref=self.ref,
                                            grace_period_seconds=grace_period_seconds, event=self._event)
        for slot in (*self._init, *self._apps):
            slot.waiting, slot.restart_at = None, None
            slot.current = await self._inspect(slot.current) if slot.current is not None else never_started(slot)
        codes = [status.container_state(s.current).exit_code for s in self._apps if s.current is not None]
        self._phase = "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"
        self._push()
        await teardown.remove_pod(self._docker, node=self._node, ref=self.ref, summaries=summaries,
                                  settings=self._settings, forget=self._signals.forget)

    # Adoption

    @classmethod
    async def adopt(cls, docker: aiodocker.Docker, summaries: Sequence[Any], *, ref: PodRef, node: str,
                    settings: DockerProviderSettings, clock: Clock, signals: ExitSignals,
                    push: Push) -> PodRunner:
        """A runner for a pod found in the engine, from its containers' labels and inspects."""
        runner = cls(docker, ref=ref, node=node, settings=settings, clock=clock, signals=signals, push=push)
        found = await read_pod(docker, summaries)
        runner._sandbox, runner._policy, runner._start_time = found.sandbox, found.restart_policy, found.start_time
        runner._grace = found.grace_seconds
        runner._init, runner._apps = found.init, found.apps
        if not found.complete:
            # Caught mid-start (vnode stopped before every container existed): the spec is not in the engine.
            runner._phase, runner._reason = "Failed", "StartInterrupted"
            runner._message = "vnode restarted while the pod was starting"
        else:
            runner._phase = "Running"
            for slot in runner._apps:
                if slot.current is not None and status.is_exited(slot.current):
                    runner._exited(slot)
            runner._phase = runner._app_phase()
        runner._events.clear()
        return runner
