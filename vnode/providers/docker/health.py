"""The probe tasks of one pod's app containers, and the kills their liveness and startup probes ask for.

`PodProbes` belongs to a `PodRunner`: it starts a `probes.ContainerProbes` task per running instance (checked by
`checks.EngineCheck`), cancels and awaits it when the instance ends or the pod goes, and answers the runner's
`ready`/`started` questions. Probes are made from `Slot.probed`: the spec, or for an adopted pod the label
`probes.probe_label` put on the container. A probe's kill request wakes the runner (`wake`), which calls
`kill_requested` from its own loop, so the stop is never cancelled half-way by the exit it causes. It must not
restart anything: the runner's restartPolicy path does that when the stopped container's exit arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import aiodocker

from vnode.clock import Clock
from vnode.providers.docker import status
from vnode.providers.docker.checks import EngineCheck
from vnode.providers.docker.probes import (
    ContainerProbes,
    EventSink,
    ProbeSpec,
    initial_verdict,
    named_ports,
    probe_specs,
)
from vnode.providers.docker.slots import Slot

log = logging.getLogger(__name__)


class PodProbes:
    def __init__(self, docker: aiodocker.Docker, *, pod: str, clock: Clock, event: EventSink,
                 push: Callable[[], None]) -> None:
        self._docker, self._pod, self._clock, self._event, self._push = docker, pod, clock, event, push
        self._probes: dict[str, ContainerProbes] = {}  # by container name: the current instance's probes
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._kills: dict[str, str] = {}  # container name → why its instance must be killed
        self.wake = asyncio.Event()  # set when a kill is asked for

    def verdict(self, slot: Slot) -> tuple[bool, bool]:
        """(ready, started) of the slot's current instance as its probes say: both True without probes; before
        its probes run (an adopted pod listed before its runner starts), what no answer yet means."""
        probes = self._probes.get(slot.name)
        if probes is not None:
            return probes.ready, probes.started
        return initial_verdict(self._specs(slot))

    def start(self, slot: Slot, sandbox: Mapping[str, Any] | None, pod_ip: str, *, running_for: float = 0.0) -> None:
        """Probe the slot's new instance, if it is a running app container with probes. `running_for`: how long
        an adopted instance has run already."""
        specs = self._specs(slot)
        if not specs or slot.current is None or sandbox is None \
                or status.container_state(slot.current).kind != "running":
            return
        pid = int((sandbox.get("State") or {}).get("Pid") or 0)  # the sandbox holds the pod's network namespace
        check = EngineCheck(self._docker, str(slot.current["Id"]), sandbox_pid=pid, pod_ip=pod_ip,
                            ports=named_ports(slot.probed or {}), clock=self._clock)

        def kill(reason: str) -> None:
            self._kills[slot.name] = reason
            self.wake.set()

        probes = ContainerProbes(slot.name, specs, check, clock=self._clock, event=self._probe_event,
                                 changed=self._push, kill=kill, running_for=running_for)
        self._probes[slot.name] = probes
        self._tasks[slot.name] = asyncio.create_task(self._run(probes), name=f"probes {self._pod}/{slot.name}")

    def resume(self, slots: Sequence[Slot], sandbox: Mapping[str, Any] | None, pod_ip: str) -> None:
        """Probe an adopted pod's running instances again. The time they have run counts towards
        initialDelaySeconds: the kubelet's prober compares that delay with the container's StartedAt."""
        now = self._clock.now()
        for slot in slots:
            started = status.container_state(slot.current).started_at if slot.current is not None else None
            self.start(slot, sandbox, pod_ip, running_for=(now - started).total_seconds() if started else 0.0)

    async def stop(self, *containers: str) -> None:
        """Cancel and await the probes of these containers (all of them when none is named)."""
        names = containers or tuple(self._tasks)
        tasks = [task for name in names if (task := self._tasks.pop(name, None)) is not None]
        for name in names:
            self._probes.pop(name, None)
            self._kills.pop(name, None)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def kill_requested(self, slots: Sequence[Slot], grace_seconds: int) -> None:
        """Stop (SIGTERM, SIGKILL after the grace period) the instances a probe gave up on."""
        self.wake.clear()
        for slot in slots:
            reason = self._kills.pop(slot.name, None)
            if reason is None or slot.current is None:
                continue
            self._event("Normal", "Killing", reason)
            self._push()
            with contextlib.suppress(aiodocker.DockerError):  # already gone: its exit is reported all the same
                await self._docker.containers.container(str(slot.current["Id"])).stop(t=grace_seconds)

    @staticmethod
    def _specs(slot: Slot) -> tuple[ProbeSpec, ...]:
        probed = slot.probed
        return probe_specs(probed, slot.where) if probed is not None and slot.role == "app" else ()

    async def _run(self, probes: ContainerProbes) -> None:
        try:
            await probes.run()
        except Exception:
            log.exception("pod %s: probes stopped", self._pod)

    def _probe_event(self, kind: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self._event(kind, reason, message)
        self._push()
