"""Container states and statuses from the engine's container inspect (`GET /containers/{id}/json`).

Owns the kubelet's vocabulary for what Docker reports: running, waiting ContainerCreating for a created container,
terminated Completed/Error/OOMKilled with exit codes and times, `docker://` IDs, and the pod IP of a sandbox.
Pure: no engine calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from vnode.providers.base import ContainerState, ContainerStatus

ID_PREFIX = "docker://"
# The engine writes Go's zero time for a container that never started or never finished.
_ZERO_YEAR = 1
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$")


def parse_time(text: str | None) -> datetime | None:
    """The engine's RFC 3339 time with nanoseconds (trimmed to microseconds); None for Go's zero time."""
    match = _TIME.match(text or "")
    if not match:
        return None
    head, fraction, zone = match.groups()
    zone = "+00:00" if zone in ("Z", "z") else zone
    moment = datetime.fromisoformat(f"{head}{'.' + fraction[:6].ljust(6, '0') if fraction else ''}{zone}")
    return None if moment.year <= _ZERO_YEAR else moment.astimezone(UTC)


def container_id(inspect: Mapping[str, Any]) -> str:
    return f"{ID_PREFIX}{inspect['Id']}" if inspect.get("Id") else ""


def terminated_reason(state: Mapping[str, Any]) -> str:
    if state.get("OOMKilled"):
        return "OOMKilled"
    return "Completed" if int(state.get("ExitCode") or 0) == 0 else "Error"


def container_state(inspect: Mapping[str, Any]) -> ContainerState:
    state: Mapping[str, Any] = inspect.get("State") or {}
    started = parse_time(state.get("StartedAt"))
    if state.get("Running") or state.get("Status") in ("running", "paused", "restarting"):
        return ContainerState("running", started_at=started)
    if state.get("Status") == "created" and state.get("Error"):
        # The engine keeps a container whose process could not start as "created", with the error (dockershim
        # reported it terminated: ContainerCannotRun).
        return ContainerState("terminated", reason="ContainerCannotRun", message=str(state["Error"]),
                              exit_code=int(state.get("ExitCode") or 128), started_at=started,
                              finished_at=parse_time(state.get("FinishedAt")), container_id=container_id(inspect))
    if state.get("Status") == "created" or (state.get("Status") != "exited" and started is None):
        return ContainerState("waiting", reason="ContainerCreating")
    return ContainerState("terminated", reason=terminated_reason(state), message=str(state.get("Error") or ""),
                          exit_code=int(state.get("ExitCode") or 0), started_at=started,
                          finished_at=parse_time(state.get("FinishedAt")), container_id=container_id(inspect))


def is_exited(inspect: Mapping[str, Any]) -> bool:
    return container_state(inspect).kind == "terminated"


def image_id(inspect: Mapping[str, Any]) -> str:
    image = str(inspect.get("Image") or "")
    return f"{ID_PREFIX}{image}" if image else ""


def container_status(name: str, inspect: Mapping[str, Any], *, restart_count: int = 0,
                     previous: Mapping[str, Any] | None = None, ready: bool = True,
                     started: bool = True) -> ContainerStatus:
    """The status of container `name` whose current instance is `inspect`; `previous` is the instance before it
    (its terminated state becomes lastState). `ready` and `started` are the probes' verdicts (without probes, a
    running container is both); neither holds unless the container runs."""
    state = container_state(inspect)
    running = state.kind == "running"
    return ContainerStatus(
        name=name, state=state, ready=running and ready, restart_count=restart_count,
        image=str((inspect.get("Config") or {}).get("Image") or ""), image_id=image_id(inspect),
        container_id=container_id(inspect), started=running and started,
        last_state=container_state(previous) if previous is not None else None)


def pod_ip(sandbox: Mapping[str, Any], network: str) -> str:
    """The sandbox's address on the pod network ("" on `none`, which gives a pod only loopback)."""
    settings: Mapping[str, Any] = sandbox.get("NetworkSettings") or {}
    networks: Mapping[str, Any] = settings.get("Networks") or {}
    if network in networks and networks[network].get("IPAddress"):
        return str(networks[network]["IPAddress"])
    if settings.get("IPAddress"):
        return str(settings["IPAddress"])
    for entry in networks.values():
        if entry.get("IPAddress"):
            return str(entry["IPAddress"])
    return ""
