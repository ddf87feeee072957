"""Reading a pod back from the engine: its sandbox and container instances, found by their labels (`naming`).

This is how a restarted vnode adopts what is running instead of recreating it; `PodRunner.adopt` turns what this
finds into a runner. Reads only: it must not create, stop or remove containers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiodocker

from vnode.providers.docker import naming, status
from vnode.providers.docker.slots import Slot


@dataclass
class FoundPod:
    """A pod as the engine holds it. Slots are in creation order; `done` is set on init containers that
    completed (whether app containers restart is for the runner's restartPolicy to say)."""

    sandbox: Mapping[str, Any] | None = None
    restart_policy: str = "Always"
    start_time: datetime | None = None
    init: list[Slot] = field(default_factory=list)
    apps: list[Slot] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every container exists: False when vnode stopped mid-start (the spec is not in the engine)."""
        return self.sandbox is not None and bool(self.apps) and all(s.done for s in self.init)


async def read_pod(docker: aiodocker.Docker, summaries: Sequence[Any]) -> FoundPod:
    """The pod whose containers' summaries (`GET /containers/json`) are `summaries`, with each one inspected."""
    found = FoundPod()
    instances: dict[tuple[str, str], list[tuple[int, Mapping[str, Any]]]] = {}
    for summary in summaries:
        labels = dict(summary["Labels"] or {})
        key = naming.key_of(labels)
        if key is None:
            continue
        inspect = await docker.containers.container(summary.id).show()
        if key.role == "sandbox":
            found.sandbox = inspect
            found.restart_policy = labels.get(naming.LABEL_RESTART_POLICY, "Always")
            found.start_time = status.parse_time(inspect["State"].get("StartedAt"))
        else:
            instances.setdefault((key.role, key.container), []).append((key.attempt, inspect))
    for (role, name), versions in sorted(instances.items(), key=lambda item: min(
            i["Created"] for _, i in item[1])):
        versions.sort(key=lambda pair: pair[0], reverse=True)
        (attempt, current), previous = versions[0], versions[1][1] if len(versions) > 1 else None
        slot = Slot(name, "init" if role == "init" else "app", str(current["Config"].get("Image", "")),
                    current=current, previous=previous, attempt=attempt)
        if slot.role == "init" and status.is_exited(current):
            slot.done = status.container_state(current).exit_code == 0
        (found.init if slot.role == "init" else found.apps).append(slot)
    return found
