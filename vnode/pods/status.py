"""Pod status from what the provider reports: phase, container statuses and conditions in one consistent piece.

Pure functions. The kubelet's rules: PodScheduled is True once bound; Initialized once every init container
completed; ContainersReady and Ready once every app container is ready (Ready also needs the pod not to be
terminal). lastTransitionTime moves only when a condition's status changes. Conditions other components own
(DisruptionTarget, readiness gates) are kept as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vnode.clock import parse_rfc3339, rfc3339
from vnode.providers.base import ContainerState, ContainerStatus, PodStatusUpdate

Obj = dict[str, Any]
OWN_CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")
TERMINAL_PHASES = ("Succeeded", "Failed")


def _time(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment else None


def container_state(state: ContainerState) -> Obj:
    if state.kind == "running":
        return {"running": {"startedAt": _time(state.started_at)}}
    if state.kind == "waiting":
        waiting: Obj = {"reason": state.reason} if state.reason else {}
        if state.message:
            waiting["message"] = state.message
        return {"waiting": waiting}
    terminated: Obj = {"exitCode": state.exit_code or 0, "reason": state.reason,
                       "startedAt": _time(state.started_at), "finishedAt": _time(state.finished_at)}
    if state.message:
        terminated["message"] = state.message
    if state.signal is not None:
        terminated["signal"] = state.signal
    if state.container_id:
        terminated["containerID"] = state.container_id
    return {"terminated": terminated}


def container_status(status: ContainerStatus) -> Obj:
    out: Obj = {
        "name": status.name,
        "state": container_state(status.state),
        "lastState": container_state(status.last_state) if status.last_state else {},
        "ready": status.ready,
        "restartCount": status.restart_count,
        "image": status.image,
        "imageID": status.image_id,
        "started": status.started if status.started is not None else status.state.kind == "running",
    }
    if status.container_id:
        out["containerID"] = status.container_id
    return out


def _condition(kind: str, ok: bool, previous: Obj | None, stamp: str, reason: str = "", message: str = "") -> Obj:
    value = "True" if ok else "False"
    condition: Obj = {"type": kind, "status": value, "lastProbeTime": None,
                      "lastTransitionTime": previous["lastTransitionTime"]
                      if previous and previous.get("status") == value and previous.get("lastTransitionTime")
                      else stamp}
    if not ok and reason:
        condition["reason"] = reason
        if message:
            condition["message"] = message
    return condition


def conditions(update: PodStatusUpdate, current: list[Obj], now: datetime) -> list[Obj]:
    stamp = rfc3339(now)
    previous = {c.get("type"): c for c in current}
    initialized = all(c.state.kind == "terminated" and c.state.exit_code == 0 for c in update.init_containers)
    not_ready = [c.name for c in update.containers if not c.ready]
    containers_ready = not not_ready and bool(update.containers) and update.phase not in TERMINAL_PHASES
    unready_message = f"containers with unready status: [{' '.join(not_ready)}]"
    pending_init = [c.name for c in update.init_containers
                    if not (c.state.kind == "terminated" and c.state.exit_code == 0)]
    ours = [
        _condition("PodScheduled", True, previous.get("PodScheduled"), stamp),
        _condition("Initialized", initialized, previous.get("Initialized"), stamp, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(pending_init)}]"),
        _condition("ContainersReady", containers_ready, previous.get("ContainersReady"), stamp,
                   "PodCompleted" if update.phase in TERMINAL_PHASES else "ContainersNotReady", unready_message),
        _condition("Ready", containers_ready, previous.get("Ready"), stamp,
                   "PodCompleted" if update.phase in TERMINAL_PHASES else "ContainersNotReady", unready_message),
    ]
    others = [c for c in current if c.get("type") not in OWN_CONDITIONS]
    return [*others, *ours]


def pod_status(update: PodStatusUpdate, pod: Obj, *, host_ip: str, now: datetime) -> Obj:
    """The complete `status` to write for `pod`, given the provider's latest `update`."""
    current = pod.get("status") or {}
    status: Obj = {
        "phase": update.phase,
        "conditions": conditions(update, current.get("conditions") or [], now),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "containerStatuses": [container_status(c) for c in update.containers],
        "qosClass": current.get("qosClass", "BestEffort"),
    }
    if update.init_containers:
        status["initContainerStatuses"] = [container_status(c) for c in update.init_containers]
    if update.pod_ip:
        status["podIP"] = update.pod_ip
        status["podIPs"] = [{"ip": update.pod_ip}]
    start = update.start_time or _parse_start(current)
    if start:
        status["startTime"] = rfc3339(start)
    # Explicit nulls: the status patch is strategic-merge, so a reason we no longer report must be deleted.
    status["reason"] = update.reason or None
    status["message"] = update.message or None
    return status


def _parse_start(current: Obj) -> datetime | None:
    value = current.get("startTime")
    return parse_rfc3339(value) if value else None


def same_status(a: Obj, b: Obj) -> bool:
    """Equal apart from condition timestamps, so a heartbeat-free update does not rewrite the pod."""
    def strip(status: Obj) -> Obj:
        out = {k: v for k, v in status.items() if v is not None}
        out["conditions"] = [{k: v for k, v in c.items() if k not in ("lastTransitionTime", "lastProbeTime")}
                             for c in status.get("conditions") or []]
        return out

    return strip(a) == strip(b)
