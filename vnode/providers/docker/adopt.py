"""Reading a pod back from the engine: its sandbox and container instances, found by their labels (`naming`).

This is how a restarted vnode adopts what is running instead of recreating it; `PodRunner.adopt` turns what this
finds into a runner. What the spec said and the runner still needs comes back from labels: the restartPolicy and
terminationGracePeriodSeconds on the sandbox, each app container's probes on the container. Reads only: it must not
create, stop or remove containers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiodocker

from vnode.errors import InvalidPod
from vnode.providers.docker import naming, spec, status
from vnode.providers.docker.probes import probes_from_label
from vnode.providers.docker.slots import Slot

log = logging.getLogger(__name__)


@dataclass
class FoundPod:
    """A pod as the engine holds it. Slots are in creation order; `done` is set on init containers that
    completed (whether app containers restart is for the runner's restartPolicy to say)."""

    sandbox: Mapping[str, Any] | None = None
    restart_policy: str = "Always"
    grace_seconds: int = spec.DEFAULT_GRACE_SECONDS  # terminationGracePeriodSeconds
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
            grace = labels.get(naming.LABEL_GRACE_PERIOD, "")
            found.grace_seconds = int(grace) if grace.isdigit() else spec.DEFAULT_GRACE_SECONDS
            found.start_time = status.parse_time(inspect["State"].get("StartedAt"))
        else:
            instances.setdefault((key.role, key.container), []).append((key.attempt, inspect))
    for (role, name), versions in sorted(instances.items(), key=lambda item: min(
            i["Created"] for _, i in item[1])):
        versions.sort(key=lambda pair: pair[0], reverse=True)
        (attempt, current), previous = versions[0], versions[1][1] if len(versions) > 1 else None
        slot = Slot(name, "init" if role == "init" else "app", str(current["Config"].get("Image", "")),
                    current=current, previous=previous, attempt=attempt, where=f"container {name!r}")
        if slot.role == "app":
            slot.carried = _carried(current, slot.where)
        if slot.role == "init" and status.is_exited(current):
            slot.done = status.container_state(current).exit_code == 0
        (found.init if slot.role == "init" else found.apps).append(slot)
    return found


def _carried(inspect: Mapping[str, Any], where: str) -> Mapping[str, Any] | None:
    """The probes an app container's label carries; a label vnode could not have written is left out (with a
    warning), so the container runs unprobed rather than not at all."""
    text = (inspect["Config"].get("Labels") or {}).get(naming.LABEL_PROBES)
    if text is None:
        return None
    try:
        return probes_from_label(text, where)
    except (ValueError, InvalidPod) as exc:
        log.warning("%s (%s): ignoring its %s label: %s", where, str(inspect.get("Id", ""))[:12], naming.LABEL_PROBES,
                    exc)
        return None
