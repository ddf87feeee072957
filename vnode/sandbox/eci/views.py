"""Response bodies of the describe actions, in ECI's key spelling (eci.md §1, eci-wire.md §3).

Pure functions from a group's spec and its runtime's `GroupSnapshot` to JSON-ready dicts. They must not change
state. Times are RFC 3339 UTC with whole seconds (`2006-01-02T15:04:05Z`). Registry passwords are never echoed.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from vnode.clock import rfc3339
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec, ContainerState, EnvVar, Probe, Volume
from vnode.sandbox.eci.runtime import GroupEvent, GroupSnapshot

_PHASES = {"Scheduling": "Pending", "Pending": "Pending", "Running": "Running", "Succeeded": "Succeeded",
           "Failed": "Failed", "Restarting": "Running", "Updating": "Running"}


def _time(moment: datetime | None) -> str:
    return rfc3339(moment) if moment is not None else ""


def _eci_state(state: ContainerState) -> dict[str, Any]:
    return {"State": state.state, "Reason": state.reason, "Message": state.message, "DetailStatus": state.reason,
            "ExitCode": state.exit_code or 0, "Signal": 0, "StartTime": _time(state.started),
            "FinishTime": _time(state.finished)}


def _probe(probe: Probe | None) -> dict[str, Any]:
    if probe is None:
        return {}
    return {"Execs": list(probe.exec_command),
            "HttpGet": {"Path": probe.http_path, "Port": probe.http_port, "Scheme": probe.http_scheme}
            if probe.http_port else {},
            "TcpSocket": {"Port": probe.tcp_port} if probe.tcp_port else {},
            "InitialDelaySeconds": probe.initial_delay_seconds, "PeriodSeconds": probe.period_seconds,
            "TimeoutSeconds": probe.timeout_seconds, "SuccessThreshold": probe.success_threshold,
            "FailureThreshold": probe.failure_threshold}


def _env(var: EnvVar) -> dict[str, Any]:
    if var.field_path:
        return {"Key": var.key, "Value": var.value, "ValueFrom": {"FieldRef": {"FieldPath": var.field_path}}}
    return {"Key": var.key, "Value": var.value}


def _container(spec: ContainerSpec, state: ContainerState, *, init: bool) -> dict[str, Any]:
    context = spec.security_context
    view: dict[str, Any] = {
        "Name": spec.name, "Image": spec.image, "Cpu": spec.cpu, "Memory": spec.memory, "Gpu": spec.gpu,
        "WorkingDir": spec.working_dir, "ImagePullPolicy": spec.image_pull_policy,
        # Init containers list their command under `Command` in this response (eci.md §1).
        "Command" if init else "Commands": list(spec.commands), "Args": list(spec.args),
        "EnvironmentVars": [_env(e) for e in spec.env_vars],
        "Ports": [{"Port": port, "Protocol": protocol} for port, protocol in spec.ports],
        "VolumeMounts": [{"Name": m.name, "MountPath": m.mount_path, "SubPath": m.sub_path, "ReadOnly": m.read_only,
                          "MountPropagation": m.mount_propagation} for m in spec.volume_mounts],
        "SecurityContext": {} if context is None else {
            "ReadOnlyRootFilesystem": context.read_only_root_filesystem, "RunAsUser": context.run_as_user,
            "Capability": {"Adds": list(context.capabilities_add)}},
        "Stdin": spec.stdin, "StdinOnce": spec.stdin_once, "Tty": spec.tty, "Ready": state.state == "Running",
        "RestartCount": state.restart_count, "CurrentState": _eci_state(state),
        "PreviousState": _eci_state(state.last) if state.last else {},
    }
    if not init:
        view.update(ReadinessProbe=_probe(spec.readiness_probe), LivenessProbe=_probe(spec.liveness_probe))
    return view


def _volume(volume: Volume) -> dict[str, Any]:
    return {"Name": volume.name, "Type": volume.type, "EmptyDirVolumeMedium": volume.medium,
            "EmptyDirVolumeSizeLimit": volume.size_limit,
            "NFSVolumeServer": volume.server if volume.type == "NFSVolume" else "",
            "NFSVolumePath": volume.path if volume.type == "NFSVolume" else "",
            "NFSVolumeReadOnly": volume.read_only,
            "ConfigFileVolumeConfigFileToPaths": [{"Path": f.path, "Content": base64.b64encode(f.content).decode()}
                                                  for f in volume.files],
            "ConfigFileVolumeDefaultMode": volume.default_mode or 0,
            "HostPathVolumePath": volume.path if volume.type == "HostPathVolume" else "",
            "HostPathVolumeType": volume.host_path_type, "DiskVolumeDiskId": volume.disk_id,
            "DiskVolumeFsType": volume.fs_type, "FlexVolumeDriver": volume.flex_driver,
            "FlexVolumeFsType": volume.fs_type if volume.type == "FlexVolume" else "",
            "FlexVolumeOptions": volume.flex_options}


def _events(group: ContainerGroup, events: tuple[GroupEvent, ...]) -> list[dict[str, Any]]:
    return [{"Count": 1, "Type": e.type, "Name": group.name, "Reason": e.reason, "Message": e.message,
             "FirstTimestamp": _time(e.at), "LastTimestamp": _time(e.at)} for e in events]


def group_view(group: ContainerGroup, snap: GroupSnapshot) -> dict[str, Any]:
    """One item of DescribeContainerGroups' `ContainerGroups`."""
    status = snap.status
    dns = group.dns_config
    view: dict[str, Any] = {
        "ContainerGroupId": group.id, "ContainerGroupName": group.name, "RegionId": group.region_id,
        "ZoneId": group.zone_id, "Cpu": group.cpu, "Memory": group.memory, "InstanceType": group.instance_type,
        "SpotStrategy": group.spot.strategy, "SpotPriceLimit": group.spot.price_limit or 0.0,
        "SpotDuration": group.spot.duration if group.spot.duration is not None else 0,
        "RestartPolicy": group.restart_policy, "Status": status, "CreationTime": _time(group.created),
        "SucceededTime": _time(snap.ended_at) if status == "Succeeded" else "",
        "FailedTime": _time(snap.ended_at) if status == "Failed" else "", "ExpiredTime": "",
        "IntranetIp": snap.intranet_ip, "InternetIp": "", "Ipv6Address": "",
        "EphemeralStorage": group.ephemeral_storage, "Discount": 0, "ComputeCategory": "economy",
        "Tags": [{"Key": k, "Value": v} for k, v in group.tags],
        "Events": _events(group, snap.events),
        "Containers": [_container(spec, snap.containers[spec.name], init=False) for spec in group.containers
                       if spec.name in snap.containers],
        "InitContainers": [_container(spec, snap.containers[spec.name], init=True) for spec in group.init_containers
                           if spec.name in snap.containers],
        "Volumes": [_volume(v) for v in group.volumes],
        "DnsConfig": {"NameServers": list(dns.name_servers), "Searches": list(dns.searches),
                      "Options": [{"Name": n, "Value": v} for n, v in dns.options]} if dns else {},
        "HostAliases": [{"Ip": ip, "Hostnames": list(names)} for ip, names in group.host_aliases],
        "EciSecurityContext": {"Sysctls": [{"Name": n, "Value": v} for n, v in group.sysctls]},
    }
    view.update(dict(group.extra))
    return view


def _k8s_state(state: ContainerState) -> dict[str, Any]:
    if state.state == "Running":
        return {"Running": {"StartedAt": _time(state.started)}}
    if state.state == "Terminated":
        return {"Terminated": {"ContainerID": "", "ExitCode": state.exit_code or 0, "Reason": state.reason,
                               "Message": state.message, "Signal": 0, "StartedAt": _time(state.started),
                               "FinishedAt": _time(state.finished)}}
    return {"Waiting": {"Reason": state.reason, "Message": state.message}}


def _condition(kind: str, true_since: datetime | None) -> dict[str, Any]:
    # ECI spells these three keys lowerCamel and Reason/Message UpperCamel (eci-wire.md §3).
    holds = true_since is not None
    return {"type": kind, "status": "True" if holds else "False", "lastTransitionTime": _time(true_since),
            "Reason": "", "Message": ""}


def status_view(group: ContainerGroup, snap: GroupSnapshot) -> dict[str, Any]:
    """One item of DescribeContainerGroupStatus' `Data`: a Kubernetes-shaped pod status."""
    specs = [spec for spec in group.containers if spec.name in snap.containers]
    return {
        "ContainerGroupId": group.id, "Name": group.name, "Namespace": "", "uuid": group.id, "Annotations": "{}",
        "Status": snap.status,
        "PodStatus": {
            "Phase": _PHASES.get(snap.status, "Unknown"), "HostIp": "", "QosClass": "Guaranteed",
            "PodIp": snap.intranet_ip, "PodIps": [{"Ip": snap.intranet_ip}] if snap.intranet_ip else [],
            "StartTime": _time(snap.scheduled_at),
            "Conditions": [_condition("PodScheduled", snap.scheduled_at),
                           _condition("ContainerInstanceCreated", snap.scheduled_at),
                           _condition("Initialized", snap.initialized_at),
                           _condition("ContainersReady", snap.ready_at), _condition("Ready", snap.ready_at)],
            "ContainerStatuses": [
                {"Name": spec.name, "Image": spec.image, "ImageID": "", "Ready": state.state == "Running",
                 "Started": state.state == "Running", "RestartCount": state.restart_count,
                 "State": _k8s_state(state), "LastState": _k8s_state(state.last) if state.last else {}}
                for spec in specs for state in (snap.containers[spec.name],)],
        },
    }


def events_view(group: ContainerGroup, snap: GroupSnapshot, since: datetime | None) -> dict[str, Any]:
    """One item of DescribeContainerGroupEvents' `Data`."""
    events = [{"Count": 1, "Type": e.type, "Reason": e.reason, "Message": e.message,
               "FirstTimestamp": _time(e.at), "LastTimestamp": _time(e.at),
               "Metadata": {"Name": group.name, "Namespace": ""},
               "Source": {"Component": "EciService", "Host": ""},
               "involvedObject": {"ApiVersion": "v1", "Kind": "Pod", "Name": group.name, "Namespace": "",
                                  "Uid": group.id},
               "ReportingComponent": "EciService", "ReportingInstance": ""}
              for e in snap.events if since is None or e.at >= since]
    return {"ContainerGroupId": group.id, "Name": group.name, "Namespace": "", "uuid": group.id,
            "Annotations": "{}", "Events": events}
