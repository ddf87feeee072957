"""ECI's answers about a container group → vnode's `PodStatusUpdate`, and the statuses vnode decides itself.

Pure functions over ECI's JSON: a DescribeContainerGroupStatus item (a Kubernetes-shaped `PodStatus`), a
DescribeContainerGroups item (ECI's own `Containers[].CurrentState`), the instance facts published as pod
annotations, and the terminal statuses of a deleted, lost or expired group. Keys are read without regard to case:
ECI spells the same key UpperCamel, lowerCamel or, for a running container's start, `StartedAtstartedAt`
(eci-wire.md §3). It must not call ECI or keep state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from vnode.providers.base import ContainerState, ContainerStatus, PodPhase, PodRef, PodStatusUpdate

TERMINAL: tuple[PodPhase, ...] = ("Succeeded", "Failed")
# Group Status → pod phase. Restarting/Updating still hold the pod's IP and containers: Running. ScheduleFailed
# stays Pending with a reason (ECI may still place it; the pod fails only under fail-on-create-err). Terminating
# is absent on purpose: the pod keeps the status it had until the group is gone.
GROUP_PHASES: Mapping[str, PodPhase] = {
    "Scheduling": "Pending", "Pending": "Pending", "ScheduleFailed": "Pending", "Running": "Running",
    "Restarting": "Running", "Updating": "Running", "Succeeded": "Succeeded", "Failed": "Failed",
    "Expired": "Failed"}
_REPORTED: Mapping[str, PodPhase] = {"Pending": "Pending", "Running": "Running", "Succeeded": "Succeeded",
                                     "Failed": "Failed"}
LOST_REASON = "ContainerGroupLost"
ANN_ID = "k8s.aliyun.com/eci-instance-id"
ANN_SPEC = "k8s.aliyun.com/eci-instance-spec"
ANN_CPU = "k8s.aliyun.com/eci-instance-cpu"
ANN_MEMORY = "k8s.aliyun.com/eci-instance-memory"
ANN_TYPE = "k8s.aliyun.com/eci-instance-type"  # only for groups created with an InstanceType
ANN_ZONE = "k8s.aliyun.com/eci-instance-zone"
ANN_SPOT = "k8s.aliyun.com/eci-spot-strategy"
ANN_IMAGE_CACHE = "k8s.aliyun.com/eci-matched-image-cache"
# Go's zero time, as ECI may send for "never".
_ZERO_TIME_PREFIX = "0001-01-01"


def ci(value: Any) -> dict[str, Any]:
    """A JSON object with lowercased keys ({} for anything else)."""
    if not isinstance(value, Mapping):
        return {}
    return {str(key).lower(): item for key, item in value.items()}


def ci_list(value: Any) -> list[dict[str, Any]]:
    return [ci(item) for item in value] if isinstance(value, list) else []


def text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return "" if value is None else str(value)


def integer(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 as ECI sends it; empty, Go's zero time and anything unreadable are None."""
    if not isinstance(value, str) or not value.strip() or value.startswith(_ZERO_TIME_PREFIX):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _has_content(obj: Mapping[str, Any]) -> bool:
    # A Go service may send every state key with zero values: only a state with something in it counts.
    return any(value not in (None, "", 0, False, {}, []) for value in obj.values())


# DescribeContainerGroupStatus: Kubernetes-shaped states.

def k8s_state(value: Any, *, pod_start: datetime | None = None) -> ContainerState | None:
    state = ci(value)
    terminated, running, waiting = ci(state.get("terminated")), ci(state.get("running")), ci(state.get("waiting"))
    if _has_content(terminated) or set(state) == {"terminated"}:
        signal = integer(terminated.get("signal"))
        return ContainerState("terminated", reason=text(terminated, "reason"), message=text(terminated, "message"),
                              exit_code=integer(terminated.get("exitcode")), signal=signal or None,
                              started_at=parse_time(terminated.get("startedat")),
                              finished_at=parse_time(terminated.get("finishedat")),
                              container_id=text(terminated, "containerid"))
    if _has_content(running) or set(state) == {"running"}:
        # Every SDK documents the key as `StartedAtstartedAt`; a Kubernetes-shaped view sends `startedAt`.
        started = parse_time(running.get("startedat")) or parse_time(running.get("startedatstartedat"))
        return ContainerState("running", started_at=started or pod_start)
    if _has_content(waiting) or set(state) == {"waiting"}:
        return ContainerState("waiting", reason=text(waiting, "reason"), message=text(waiting, "message"))
    return None  # nothing or several empty states: the caller decides from `Started`


def _k8s_container(value: Any, *, pod_start: datetime | None, waiting_reason: str) -> ContainerStatus:
    item = ci(value)
    started = flag(item.get("started"))
    state = k8s_state(item.get("state"), pod_start=pod_start)
    if state is None:
        state = (ContainerState("running", started_at=pod_start) if started
                 else ContainerState("waiting", reason=waiting_reason))
    last = k8s_state(item.get("laststate"))
    return ContainerStatus(
        name=text(item, "name"), state=state, ready=flag(item.get("ready")),
        restart_count=integer(item.get("restartcount")), image=text(item, "image"),
        image_id=text(item, "imageid"), container_id=text(item, "containerid") or state.container_id,
        started=started if "started" in item else None, last_state=last if last and last.kind == "terminated" else None)


# DescribeContainerGroups: ECI's own CurrentState/PreviousState.

def eci_state(value: Any) -> ContainerState | None:
    state = ci(value)
    kind = text(state, "state").lower()
    reason, message = text(state, "reason"), text(state, "message")
    started, finished = parse_time(state.get("starttime")), parse_time(state.get("finishtime"))
    if kind == "terminated":
        signal = integer(state.get("signal"))
        return ContainerState("terminated", reason=reason, message=message, exit_code=integer(state.get("exitcode")),
                              signal=signal or None, started_at=started, finished_at=finished)
    if kind == "running":
        return ContainerState("running", started_at=started)
    if kind == "waiting":
        return ContainerState("waiting", reason=reason, message=message)
    return None


def _eci_container(value: Any, *, waiting_reason: str) -> ContainerStatus:
    item = ci(value)
    state = eci_state(item.get("currentstate")) or ContainerState("waiting", reason=waiting_reason)
    last = eci_state(item.get("previousstate"))
    return ContainerStatus(
        name=text(item, "name"), state=state, ready=flag(item.get("ready")),
        restart_count=integer(item.get("restartcount")), image=text(item, "image"),
        started=state.kind == "running", last_state=last if last and last.kind == "terminated" else None)


# Whole groups.

def _schedule_reason(pod_status: Mapping[str, Any]) -> tuple[str, str]:
    """Why a group is ScheduleFailed: ECI puts it on the ContainerInstanceCreated/PodScheduled condition (NoStock,
    StockExhaust…), which ACK shows as `ContainerGroup.<reason>`."""
    for condition in ci_list(pod_status.get("conditions")):
        if text(condition, "status") == "False" and text(condition, "reason"):
            return f"ContainerGroup.{text(condition, 'reason')}", text(condition, "message")
    return "ContainerGroup.ScheduleFailed", "ECI could not place the container group"


def _phase(group_status: str, reported: str, previous: PodStatusUpdate | None) -> PodPhase | None:
    phase = GROUP_PHASES.get(group_status)
    if phase is not None:
        return phase
    if group_status == "Terminating":
        return None
    return _REPORTED.get(reported) or (previous.phase if previous is not None else None)


def from_status_item(item: Any, ref: PodRef, *, previous: PodStatusUpdate | None,
                     fail_fast: bool = False) -> PodStatusUpdate | None:
    """One DescribeContainerGroupStatus `Data` item (`backend_state` is the group Status, which billing follows);
    None when it says nothing (an unknown status and no previous one)."""
    group = ci(item)
    pod = ci(group.get("podstatus"))
    group_status = text(group, "status")
    phase = _phase(group_status, text(pod, "phase"), previous)
    if phase is None:
        # Terminating: the pod's status stands; only the group's state (still billed) moves.
        return replace(previous, backend_state=group_status, events=()) if previous and group_status else None
    start = parse_time(pod.get("starttime")) or (previous.start_time if previous else None)
    waiting = "ContainerCreating" if group_status == "Pending" else group_status or "Pending"
    containers = tuple(_k8s_container(c, pod_start=start, waiting_reason=waiting)
                       for c in ci_list(pod.get("containerstatuses")))
    init = tuple(_k8s_container(c, pod_start=start, waiting_reason="PodInitializing")
                 for c in ci_list(pod.get("initcontainerstatuses")))
    update = PodStatusUpdate(
        ref=ref, phase=phase, containers=containers or (previous.containers if previous else ()),
        init_containers=init or (previous.init_containers if previous else ()),
        pod_ip=text(pod, "podip") or (previous.pod_ip if previous else ""), start_time=start,
        backend_state=group_status)
    return _finish(update, group_status, _schedule_reason(pod), fail_fast=fail_fast)


def from_group_item(item: Any, ref: PodRef, *, fail_fast: bool = False) -> PodStatusUpdate:
    """One DescribeContainerGroups `ContainerGroups` item (list_pods, adoption). A Terminating group counts as
    Running: it still holds its containers until ECI has removed it."""
    group = ci(item)
    group_status = text(group, "status")
    phase: PodPhase = GROUP_PHASES.get(group_status, "Running" if group_status == "Terminating" else "Pending")
    waiting = "ContainerCreating" if group_status == "Pending" else group_status or "Pending"
    containers = tuple(_eci_container(c, waiting_reason=waiting) for c in ci_list(group.get("containers")))
    init = tuple(_eci_container(c, waiting_reason="PodInitializing") for c in ci_list(group.get("initcontainers")))
    starts = [c.state.started_at for c in (*init, *containers) if c.state.started_at is not None]
    update = PodStatusUpdate(ref=ref, phase=phase, containers=containers, init_containers=init,
                             pod_ip=text(group, "intranetip"), start_time=min(starts) if starts else None,
                             backend_state=group_status)
    reason = "ContainerGroup.ScheduleFailed", "ECI could not place the container group"
    for event in reversed(ci_list(group.get("events"))):
        if text(event, "type") == "Warning":
            reason = f"ContainerGroup.{text(event, 'reason')}", text(event, "message")
            break
    return _finish(update, group_status, reason, fail_fast=fail_fast)


def _finish(update: PodStatusUpdate, group_status: str, schedule: tuple[str, str], *,
            fail_fast: bool) -> PodStatusUpdate:
    if update.phase == "Running" and update.init_containers and update.containers:
        # ECI starts app containers only once every init container succeeded; its status may omit them.
        update = replace(update, init_containers=tuple(
            c if c.state.kind == "terminated" else replace(c, state=ContainerState("terminated", reason="Completed",
                                                                                   exit_code=0))
            for c in update.init_containers))
    if group_status == "ScheduleFailed":
        reason, message = schedule
        if fail_fast:
            return ended(replace(update, phase="Failed", reason="ContainerInstanceScheduleFailed",
                                 message=f"{reason}: {message}"), "ContainerInstanceScheduleFailed")
        return replace(update, reason=reason, message=message)
    if group_status == "Expired":
        return ended(replace(update, reason="Expired", message="ECI released the instance (spot reclaimed or "
                                                               "expired)"), "Expired")
    if update.phase in TERMINAL:
        return ended(update, "Error")
    return update


def _end_state(state: ContainerState, reason: str) -> ContainerState:
    if state.kind == "terminated":
        return state
    if state.kind == "running":
        # 143 = 128 + SIGTERM: ECI stops containers with SIGTERM, then SIGKILL after the grace period.
        return ContainerState("terminated", reason=reason, exit_code=143, started_at=state.started_at)
    # Never started: what the kubelet reports for a container it cannot find at the end.
    return ContainerState("terminated", reason="ContainerStatusUnknown", exit_code=137,
                          message="The container could not be located when the pod was terminated")


def ended(update: PodStatusUpdate, reason: str) -> PodStatusUpdate:
    """Every container terminated (those still running or waiting with `reason`); the phase kept if terminal,
    else Succeeded when every app container exited 0, Failed otherwise."""
    containers = tuple(replace(c, state=_end_state(c.state, reason), ready=False, started=False)
                       for c in update.containers)
    init = tuple(replace(c, state=_end_state(c.state, reason), ready=False, started=False)
                 for c in update.init_containers)
    phase = update.phase
    if phase not in TERMINAL:
        phase = "Succeeded" if containers and all(c.state.exit_code == 0 for c in containers) else "Failed"
    return replace(update, phase=phase, containers=containers, init_containers=init)


def deleted(previous: PodStatusUpdate) -> PodStatusUpdate:
    """The pod's last status once vnode deleted its group (ECI does not report a deleted group's exit codes)."""
    if previous.phase in TERMINAL:
        return replace(previous, events=())
    return ended(replace(previous, events=()), "Error")


def lost(previous: PodStatusUpdate) -> PodStatusUpdate:
    """ECI no longer knows a group vnode saw running: it was removed outside vnode."""
    return ended(replace(previous, phase="Failed", reason=LOST_REASON, events=(),
                         message="the ECI container group disappeared (deleted outside vnode or released by ECI)"),
                 LOST_REASON)


def _number(value: Any) -> str:
    try:
        return str(float(value))
    except (TypeError, ValueError):
        return ""


def instance_annotations(item: Any) -> dict[str, str]:
    """What the pod's annotations say about its instance, from a DescribeContainerGroups item."""
    group = ci(item)
    cpu, memory = _number(group.get("cpu")), _number(group.get("memory"))
    instance_type = text(group, "instancetype")
    facts = {ANN_ID: text(group, "containergroupid"), ANN_CPU: cpu, ANN_MEMORY: memory,
             ANN_SPEC: instance_type or (f"{cpu}-{memory}Gi" if cpu and memory else ""), ANN_TYPE: instance_type,
             ANN_ZONE: text(group, "zoneid"), ANN_SPOT: text(group, "spotstrategy") or "NoSpot"}
    return {key: value for key, value in facts.items() if value}
