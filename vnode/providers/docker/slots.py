"""What a `PodRunner` remembers of each container of its pod, and the container-exit signals the provider feeds it.

A `Slot` is one container of the pod spec with its newest two instances in the engine (and `slot_status` its
ContainerStatus); `ExitSignals` maps container IDs to events the engine's `die` stream sets. Plain state: no engine
calls, no tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vnode.providers.base import ContainerState, ContainerStatus
from vnode.providers.docker import status


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
class Slot:
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
    carried: Mapping[str, Any] | None = None  # an adopted container's probes and named ports, from its label

    @property
    def probed(self) -> Mapping[str, Any] | None:
        """The container fields its probes are made from: the spec's, else what its label carried."""
        return self.container if self.container is not None else self.carried


def never_started(slot: Slot) -> Mapping[str, Any]:
    """A container the pod's deletion caught before it existed: terminated, so the deletion can finish."""
    return {"Config": {"Image": slot.image}, "State": {
        "Status": "exited", "ExitCode": 137, "Error": "The container was not started before the pod was deleted"}}


def slot_status(slot: Slot, *, ready: bool, started: bool, initializing: bool) -> ContainerStatus:
    """The container's status: a waiting state of our own (pull errors, back-off) over the engine's view of its
    current instance; before any instance, PodInitializing (init containers still running) or ContainerCreating."""
    if slot.waiting is not None:
        last = status.container_state(slot.current) if slot.current else None
        return ContainerStatus(slot.name, slot.waiting, restart_count=slot.attempt, image=slot.image,
                               last_state=last if last and last.kind == "terminated" else None)
    if slot.current is not None:
        return status.container_status(slot.name, slot.current, restart_count=slot.attempt,
                                       previous=slot.previous, ready=ready, started=started)
    reason = "PodInitializing" if initializing else "ContainerCreating"
    return ContainerStatus(slot.name, ContainerState("waiting", reason=reason), image=slot.image)
