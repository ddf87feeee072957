"""A container group as the Docker provider's input: a synthetic pod (`ResolvedPod`) in namespace `eci`.

The pod is named after the group and its UID is one per run of the group (the group id, then a new one after each
restart or update). Containers keep ECI's fields in their Kubernetes spelling: command/args, env, ports, mounts
(subPath, readOnly), probes, a securityContext subset, stdin/tty, resources (the container's Cpu/Memory as limits).
EmptyDirVolume becomes an emptyDir and ConfigFileVolume a `files` volume (the decoded contents, each file's mode,
else the volume's DefaultMode, else 0644); HostPathVolume a hostPath, which the provider allows only when its
settings do. NFS, Disk and Flex volumes cannot be provided on a local engine: `Unsupported` names them. Lifecycle
hooks are left out (the provider does not run them) and an env FieldRef is left unset. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from vnode.providers.base import EnvVar, PodRef, RegistryAuth, ResolvedPod, ResolvedVolume, VolumeFile
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec, Probe, Volume

NAMESPACE = "eci"
_DEFAULT_FILE_MODE = 0o644
_REFUSED_VOLUMES = ("NFSVolume", "DiskVolume", "FlexVolume")


class Unsupported(Exception):
    """The group needs something a local Docker engine cannot give it; the text says what."""


def pod_ref(group: ContainerGroup, uid: str) -> PodRef:
    return PodRef(NAMESPACE, group.name, uid)


def group_pod(group: ContainerGroup, uid: str) -> ResolvedPod:
    for volume in group.volumes:
        if volume.type in _REFUSED_VOLUMES:
            raise Unsupported(f"volume {volume.name}: {volume.type} cannot be mounted by the docker runtime")
    spec: dict[str, Any] = {
        "restartPolicy": group.restart_policy,
        "containers": [_container(c, init=False) for c in group.containers],
        "initContainers": [_container(c, init=True) for c in group.init_containers],
        "volumes": [_volume_spec(v) for v in group.volumes],
    }
    if group.termination_grace_period_seconds is not None:
        spec["terminationGracePeriodSeconds"] = group.termination_grace_period_seconds
    if group.host_aliases:
        spec["hostAliases"] = [{"ip": ip, "hostnames": list(names)} for ip, names in group.host_aliases]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": group.name, "namespace": NAMESPACE, "uid": uid,
                        "labels": {"eci.aliyun.com/container-group-id": group.id}},
           "spec": spec}
    env = {c.name: tuple(EnvVar(k, v) for k, v in c.env) for c in group.containers + group.init_containers}
    return ResolvedPod(
        ref=pod_ref(group, uid), pod=pod, env=env,
        volumes={v.name: _resolved(v) for v in group.volumes},
        registry_auth=tuple(RegistryAuth(c.server, c.user_name, c.password) for c in group.registry_credentials))


def _container(spec: ContainerSpec, *, init: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": spec.name, "image": spec.image, "imagePullPolicy": spec.image_pull_policy}
    if spec.commands:
        out["command"] = list(spec.commands)
    if spec.args:
        out["args"] = list(spec.args)
    if spec.working_dir:
        out["workingDir"] = spec.working_dir
    if spec.ports:
        out["ports"] = [{"containerPort": port, "protocol": protocol} for port, protocol in spec.ports]
    if spec.volume_mounts:
        out["volumeMounts"] = [{"name": m.name, "mountPath": m.mount_path, "readOnly": m.read_only,
                                **({"subPath": m.sub_path} if m.sub_path else {})} for m in spec.volume_mounts]
    limits = {}
    if spec.cpu > 0:
        limits["cpu"] = f"{round(spec.cpu * 1000)}m"
    if spec.memory > 0:
        limits["memory"] = f"{round(spec.memory * 1024)}Mi"
    if limits:
        out["resources"] = {"limits": limits}
    if spec.security_context is not None:
        context = spec.security_context
        security: dict[str, Any] = {"readOnlyRootFilesystem": context.read_only_root_filesystem}
        if context.run_as_user is not None:
            security["runAsUser"] = context.run_as_user
        if context.run_as_group is not None:
            security["runAsGroup"] = context.run_as_group
        if context.run_as_non_root:
            security["runAsNonRoot"] = True
        if context.privileged:
            security["privileged"] = True
        if context.capabilities_add:
            security["capabilities"] = {"add": list(context.capabilities_add)}
        out["securityContext"] = security
    for key, value in (("stdin", spec.stdin), ("stdinOnce", spec.stdin_once), ("tty", spec.tty)):
        if value:
            out[key] = True
    if not init:
        for key, probe in (("readinessProbe", spec.readiness_probe), ("livenessProbe", spec.liveness_probe),
                           ("startupProbe", spec.startup_probe)):
            if probe is not None:
                out[key] = _probe(probe)
    return out


def _probe(probe: Probe) -> dict[str, Any]:
    out: dict[str, Any] = {"initialDelaySeconds": probe.initial_delay_seconds, "periodSeconds": probe.period_seconds,
                           "timeoutSeconds": probe.timeout_seconds, "successThreshold": probe.success_threshold,
                           "failureThreshold": probe.failure_threshold}
    if probe.exec_command:
        out["exec"] = {"command": list(probe.exec_command)}
    elif probe.http_port:
        out["httpGet"] = {"path": probe.http_path or "/", "port": probe.http_port,
                          "scheme": probe.http_scheme or "HTTP"}
    else:
        out["tcpSocket"] = {"port": probe.tcp_port}
    return out


def _volume_spec(volume: Volume) -> dict[str, Any]:
    if volume.type == "EmptyDirVolume":
        source: dict[str, Any] = {}
        if volume.medium == "Memory":
            source["medium"] = "Memory"
        if volume.size_limit:
            source["sizeLimit"] = volume.size_limit
        return {"name": volume.name, "emptyDir": source}
    if volume.type == "HostPathVolume":
        return {"name": volume.name, "hostPath": {"path": volume.path, "type": volume.host_path_type}}
    return {"name": volume.name, "configMap": {"name": volume.name}}  # ConfigFileVolume: materialised files


def _resolved(volume: Volume) -> ResolvedVolume:
    if volume.type == "EmptyDirVolume":
        return ResolvedVolume(volume.name, "emptyDir", medium="Memory" if volume.medium == "Memory" else "",
                              size_limit=volume.size_limit or None)
    if volume.type == "ConfigFileVolume":
        default = volume.default_mode if volume.default_mode is not None else _DEFAULT_FILE_MODE
        return ResolvedVolume(volume.name, "files", files=tuple(
            VolumeFile(f.path, f.content, f.mode if f.mode is not None else default) for f in volume.files))
    return ResolvedVolume(volume.name, "other", source=_volume_spec(volume))
