"""Response bodies of the describe actions, in ECI's key spelling (eci.md §1, eci-wire.md §3).

Pure functions from a group and an instant to JSON-ready dicts. They must not change state. Times are RFC 3339
UTC with whole seconds (`2006-01-02T15:04:05Z`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vnode.clock import rfc3339
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec, ContainerState

_PHASES = {"Scheduling": "Pending", "Pending": "Pending", "Running": "Running", "Succeeded": "Succeeded",
           "Failed": "Failed"}


def _time(moment: datetime | None) -> str:
    return rfc3339(moment) if moment is not None else ""


def _eci_state(state: ContainerState) -> dict[str, Any]:
    return {"State": state.state, "Reason": state.reason, "Message": "", "DetailStatus": state.reason,
            "ExitCode": state.exit_code or 0, "Signal": 0, "StartTime": _time(state.started),
            "FinishTime": _time(state.finished)}


def _container(group: ContainerGroup, spec: ContainerSpec, now: datetime) -> dict[str, Any]:
    state = group.container_state(spec, now)
    return {"Name": spec.name, "Image": spec.image, "Cpu": spec.cpu, "Memory": spec.memory, "Gpu": 0,
            "WorkingDir": spec.working_dir, "ImagePullPolicy": spec.image_pull_policy,
            "Commands": list(spec.commands), "Args": list(spec.args),
            "EnvironmentVars": [{"Key": k, "Value": v} for k, v in spec.env],
            "Ports": [{"Port": port, "Protocol": protocol} for port, protocol in spec.ports],
            "Stdin": spec.stdin, "Tty": spec.tty, "Ready": state.state == "Running",
            "RestartCount": state.restart_count, "CurrentState": _eci_state(state),
            "PreviousState": _eci_state(state.last) if state.last else {}}


def group_view(group: ContainerGroup, now: datetime) -> dict[str, Any]:
    """One item of DescribeContainerGroups' `ContainerGroups`."""
    status = group.status(now)
    end = group.ended_at() if status in ("Succeeded", "Failed") else None
    view: dict[str, Any] = {
        "ContainerGroupId": group.id, "ContainerGroupName": group.name, "RegionId": group.region_id,
        "ZoneId": group.zone_id, "Cpu": group.cpu, "Memory": group.memory, "RestartPolicy": group.restart_policy,
        "Status": status, "CreationTime": _time(group.created),
        "SucceededTime": _time(end) if status == "Succeeded" else "",
        "FailedTime": _time(end) if status == "Failed" else "",
        "IntranetIp": group.intranet_ip if now >= group.pending_at else "", "InternetIp": "",
        "Tags": [{"Key": k, "Value": v} for k, v in group.tags],
        "Events": [{"Count": 1, "Type": kind, "Name": group.name, "Reason": reason, "Message": message,
                    "FirstTimestamp": _time(at), "LastTimestamp": _time(at)}
                   for at, kind, reason, message in group.events(now)],
        "Containers": [_container(group, spec, now) for spec in group.containers],
        "InitContainers": [_container(group, spec, now) for spec in group.init_containers],
        "Volumes": [{"Name": name, "Type": kind} for name, kind in group.volumes],
    }
    view.update(dict(group.extra))
    return view


def _k8s_state(state: ContainerState) -> dict[str, Any]:
    if state.state == "Running":
        return {"Running": {"StartedAt": _time(state.started)}}
    if state.state == "Terminated":
        return {"Terminated": {"ContainerID": "", "ExitCode": state.exit_code or 0, "Reason": state.reason,
                               "Message": "", "Signal": 0, "StartedAt": _time(state.started),
                               "FinishedAt": _time(state.finished)}}
    return {"Waiting": {"Reason": state.reason, "Message": ""}}


def _condition(kind: str, true_since: datetime | None, now: datetime) -> dict[str, Any]:
    # ECI spells these three keys lowerCamel and Reason/Message UpperCamel (eci-wire.md §3).
    holds = true_since is not None and true_since <= now
    return {"type": kind, "status": "True" if holds else "False",
            "lastTransitionTime": _time(true_since if holds else None), "Reason": "", "Message": ""}


def status_view(group: ContainerGroup, now: datetime) -> dict[str, Any]:
    """One item of DescribeContainerGroupStatus' `Data`: a Kubernetes-shaped pod status."""
    status = group.status(now)
    states = [(spec, group.container_state(spec, now)) for spec in group.containers]
    ready = group.running_at if status == "Running" and all(s.state == "Running" for _, s in states) else None
    started = now >= group.pending_at
    return {
        "ContainerGroupId": group.id, "Name": group.name, "Namespace": "", "uuid": group.id, "Annotations": "{}",
        "Status": status,
        "PodStatus": {
            "Phase": _PHASES.get(status, "Unknown"), "HostIp": "", "QosClass": "Guaranteed",
            "PodIp": group.intranet_ip if started else "",
            "PodIps": [{"Ip": group.intranet_ip}] if started else [],
            "StartTime": _time(group.pending_at if started else None),
            "Conditions": [_condition("PodScheduled", group.pending_at, now),
                           _condition("ContainerInstanceCreated", group.pending_at, now),
                           _condition("Initialized", group.running_at, now),
                           _condition("ContainersReady", ready, now), _condition("Ready", ready, now)],
            "ContainerStatuses": [
                {"Name": spec.name, "Image": spec.image, "ImageID": "", "Ready": state.state == "Running",
                 "Started": state.state == "Running", "RestartCount": state.restart_count,
                 "State": _k8s_state(state), "LastState": _k8s_state(state.last) if state.last else {}}
                for spec, state in states],
        },
    }


def events_view(group: ContainerGroup, now: datetime, since: datetime | None) -> dict[str, Any]:
    """One item of DescribeContainerGroupEvents' `Data`."""
    events = [{"Count": 1, "Type": kind, "Reason": reason, "Message": message, "FirstTimestamp": _time(at),
               "LastTimestamp": _time(at), "Metadata": {"Name": group.name, "Namespace": ""},
               "Source": {"Component": "EciService", "Host": ""},
               "involvedObject": {"ApiVersion": "v1", "Kind": "Pod", "Name": group.name, "Namespace": "",
                                  "Uid": group.id},
               "ReportingComponent": "EciService", "ReportingInstance": ""}
              for at, kind, reason, message in group.events(now) if since is None or at >= since]
    return {"ContainerGroupId": group.id, "Name": group.name, "Namespace": "", "uuid": group.id,
            "Annotations": "{}", "Events": events}
