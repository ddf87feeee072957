"""The probe tasks of one pod's app containers, and the kills their liveness and startup probes ask for.

`PodProbes` belongs to a `PodRunner`: it starts a `probes.ContainerProbes` task per running instance (checked by
`checks.EngineCheck`), cancels and awaits it when the instance ends or the pod goes, and answers the runner's
`ready`/`started` questions. A probe's kill request wakes the runner (`wake`), which calls `kill_requested` from its
own loop, so the stop is never cancelled half-way by the exit it causes. It must not restart anything: the
runner's restartPolicy path does that when the stopped container's exit arrives.
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
from vnode.providers.docker.probes import ContainerProbes, EventSink, probe_specs
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

    def verdict(self, container: str) -> tuple[bool, bool]:
        """(ready, started) of the container's current instance as its probes say (both True without probes)."""
        probes = self._probes.get(container)
        return (probes.ready, probes.started) if probes else (True, True)

    def start(self, slot: Slot, sandbox: Mapping[str, Any] | None, pod_ip: str) -> None:
        """Probe the slot's new instance, if it is a running app container whose spec has probes."""
        specs = probe_specs(slot.container, slot.where) if slot.container is not None else ()
        if not specs or slot.role != "app" or slot.current is None or sandbox is None \
                or status.container_state(slot.current).kind != "running":
            return
        pid = int((sandbox.get("State") or {}).get("Pid") or 0)  # the sandbox holds the pod's network namespace
        ports = {str(p["name"]): int(p["containerPort"]) for p in (slot.container or {}).get("ports") or []
                 if p.get("name") and p.get("containerPort")}
        check = EngineCheck(self._docker, str(slot.current["Id"]), sandbox_pid=pid, pod_ip=pod_ip, ports=ports,
                            clock=self._clock)

        def kill(reason: str) -> None:
            self._kills[slot.name] = reason
            self.wake.set()

        probes = ContainerProbes(slot.name, specs, check, clock=self._clock, event=self._probe_event,
                                 changed=self._push, kill=kill)
        self._probes[slot.name] = probes
        self._tasks[slot.name] = asyncio.create_task(self._run(probes), name=f"probes {self._pod}/{slot.name}")

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

    async def _run(self, probes: ContainerProbes) -> None:
        try:
            await probes.run()
        except Exception:
            log.exception("pod %s: probes stopped", self._pod)

    def _probe_event(self, kind: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self._event(kind, reason, message)
        self._push()
