"""A pod's containers as Docker Engine create configs (`POST /containers/create` bodies).

Owns the mapping of Kubernetes container fields to the engine's Config/HostConfig and the refusal, with
`InvalidPod` naming the field, of everything the Docker provider cannot honour. Pure: no engine calls, no I/O.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from vnode.config import DockerProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import ResolvedPod
from vnode.providers.docker import naming
from vnode.providers.docker.probes import probe_label, probe_specs
from vnode.util.quantity import parse_quantity

Obj = dict[str, Any]
# Container fields the provider does not implement (yet): silently ignoring them would misreport the pod.
_UNSUPPORTED_CONTAINER = ("lifecycle", "volumeDevices")
# API validation allows probes on init containers only for sidecars (restartPolicy Always), which are not run here.
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_UNSUPPORTED_POD = ("hostNetwork", "hostPID", "hostIPC")
_UNSUPPORTED_SECURITY = ("seLinuxOptions", "windowsOptions")
# The API server's default terminationGracePeriodSeconds: how long a container killed for a probe has to stop.
DEFAULT_GRACE_SECONDS = 30
# Restart clones copy exactly what `container_config` sets, read back from the old instance's inspect.
_CLONED_CONFIG = ("Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Tty", "OpenStdin", "StdinOnce")
_CLONED_HOST = ("Binds", "NetworkMode", "PidMode", "NanoCpus", "CpuShares", "Memory", "ReadonlyRootfs", "CapAdd",
                "CapDrop", "Privileged", "SecurityOpt", "GroupAdd")


def restart_policy(pod: ResolvedPod) -> str:
    return str(pod.spec.get("restartPolicy") or "Always")


def grace_period(pod: ResolvedPod) -> int:
    grace = pod.spec.get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_SECONDS if grace is None else int(grace)


def pull_policy(container: Mapping[str, Any]) -> str:
    """imagePullPolicy as API defaulting sets it: Always for `:latest` or untagged images, else IfNotPresent."""
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    image = str(container.get("image", ""))
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def validate_pod(pod: ResolvedPod, settings: DockerProviderSettings) -> None:
    """Refuse pod-level fields this provider cannot run, before anything is created."""
    for key in _UNSUPPORTED_POD:
        if pod.spec.get(key):
            raise InvalidPod(f"{key} is not supported by the Docker provider", field=f"spec.{key}")
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(pod.spec.get(list_name) or []):
            where = f"spec.{list_name}[{index}]"
            for key in (*_UNSUPPORTED_CONTAINER, *(_PROBES if list_name == "initContainers" else ())):
                if container.get(key):
                    raise InvalidPod(f"{key} is not supported by the Docker provider", field=f"{where}.{key}")
            if list_name == "containers":
                probe_specs(container, where)
            if not container.get("image"):
                raise InvalidPod("a container needs an image", field=f"{where}.image")
            for port_index, port in enumerate(container.get("ports") or []):
                if port.get("hostPort"):
                    raise InvalidPod("hostPort is not supported by the Docker provider",
                                     field=f"{where}.ports[{port_index}].hostPort")
            _security(pod, container, where, settings)


def sandbox_config(pod: ResolvedPod, *, node: str, settings: DockerProviderSettings) -> Obj:
    """The pod's sandbox: it holds the network namespace (and /etc/hosts) every other container joins."""
    host: Obj = {"NetworkMode": settings.network}
    aliases = [f"{hostname}:{alias['ip']}" for alias in pod.spec.get("hostAliases") or []
               for hostname in alias.get("hostnames") or []]
    if aliases:
        host["ExtraHosts"] = aliases
    hostname = str(pod.spec.get("hostname") or pod.ref.name)[:63]
    return {"Image": settings.pause_image, "Hostname": hostname, "Labels": sandbox_labels(pod, node),
            "HostConfig": host}


def sandbox_labels(pod: ResolvedPod, node: str) -> dict[str, str]:
    key = naming.ContainerKey(pod.ref, "sandbox", "", 0)
    found = {**naming.labels(node, key), naming.LABEL_RESTART_POLICY: restart_policy(pod)}
    if pod.spec.get("terminationGracePeriodSeconds") is not None:
        found[naming.LABEL_GRACE_PERIOD] = str(grace_period(pod))
    return found


def container_config(pod: ResolvedPod, container: Mapping[str, Any], *, where: str, role: naming.Role, attempt: int,
                     node: str, sandbox_id: str, volume_paths: Mapping[str, str],
                     settings: DockerProviderSettings) -> Obj:
    """The create body of one instance (`attempt`) of a pod container joining the sandbox's namespaces."""
    name = container["name"]
    env = {var.name: var.value for var in pod.env.get(name, ())}
    labels = naming.labels(node, naming.ContainerKey(pod.ref, role, name, attempt))
    carried = probe_label(container) if role == "app" else None
    if carried is not None:
        labels[naming.LABEL_PROBES] = carried
    config: Obj = {
        "Image": container["image"],
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Tty": bool(container.get("tty")),
        "OpenStdin": bool(container.get("stdin")),
        "StdinOnce": bool(container.get("stdinOnce")),
        "Labels": labels,
    }
    # Kubernetes `command` replaces the image's ENTRYPOINT (and drops its CMD); `args` replaces CMD; both see
    # `$(VAR)` expanded from the container's env.
    if container.get("command"):
        config["Entrypoint"] = [expand(str(part), env) for part in container["command"]]
    if container.get("args"):
        config["Cmd"] = [expand(str(part), env) for part in container["args"]]
    if container.get("workingDir"):
        config["WorkingDir"] = container["workingDir"]
    host: Obj = {"NetworkMode": f"container:{sandbox_id}",
                 "Binds": binds(pod, container, where, volume_paths)}
    if pod.spec.get("shareProcessNamespace"):
        host["PidMode"] = f"container:{sandbox_id}"
    host.update(_resources(container, where))
    user, security = _security(pod, container, where, settings)
    if user:
        config["User"] = user
    host.update(security)
    config["HostConfig"] = host
    return config


def clone_config(inspect: Mapping[str, Any], *, node: str, key: naming.ContainerKey) -> Obj:
    """A new instance of a container, from the engine's record of the previous one (adopted pods' restarts)."""
    old = inspect.get("Config") or {}
    old_host = inspect.get("HostConfig") or {}
    config: Obj = {k: old[k] for k in _CLONED_CONFIG if old.get(k) is not None}
    config["HostConfig"] = {k: old_host[k] for k in _CLONED_HOST if old_host.get(k) is not None}
    config["Labels"] = naming.labels(node, key)
    carried = (old.get("Labels") or {}).get(naming.LABEL_PROBES)
    if carried is not None:
        config["Labels"][naming.LABEL_PROBES] = carried
    return config


def binds(pod: ResolvedPod, container: Mapping[str, Any], where: str, volume_paths: Mapping[str, str]) -> list[str]:
    """`host:target[:ro]` for each volumeMount; subPath selects a path inside the volume."""
    out: list[str] = []
    for index, mount in enumerate(container.get("volumeMounts") or []):
        field = f"{where}.volumeMounts[{index}]"
        if mount.get("subPathExpr"):
            raise InvalidPod("subPathExpr is not supported by the Docker provider", field=f"{field}.subPathExpr")
        if mount.get("mountPropagation") not in (None, "None"):
            raise InvalidPod("mount propagation is not supported by the Docker provider",
                             field=f"{field}.mountPropagation")
        source = volume_paths.get(mount.get("name", ""))
        if source is None:
            raise InvalidPod(f"volume {mount.get('name')!r} is not defined in spec.volumes", field=f"{field}.name")
        sub_path = sub_path_of(mount, field)
        if sub_path:
            source = posixpath.join(source, sub_path)
        volume = pod.volumes.get(mount["name"])
        # The kubelet mounts configMap, secret, projected and downwardAPI volumes read-only.
        read_only = bool(mount.get("readOnly")) or (volume is not None and volume.kind == "files")
        out.append(f"{source}:{mount['mountPath']}{':ro' if read_only else ''}")
    return out


def sub_path_of(mount: Mapping[str, Any], field: str) -> str:
    """The mount's subPath, refused when it is absolute or climbs out of the volume (API validation's rules)."""
    sub_path = str(mount.get("subPath") or "")
    if sub_path and (sub_path.startswith("/") or ".." in sub_path.split("/")):
        raise InvalidPod("subPath must be a relative path without '..'", field=f"{field}.subPath")
    return sub_path


def expand(text: str, env: Mapping[str, str]) -> str:
    """`$(NAME)` from the container's env; `$$` is a literal `$`; unknown references stay as written."""
    out: list[str] = []
    cursor = 0
    while cursor < len(text):
        char = text[cursor]
        if char == "$" and cursor + 1 < len(text):
            following = text[cursor + 1]
            close = text.find(")", cursor + 2) if following == "(" else -1
            if close != -1:
                name = text[cursor + 2:close]
                out.append(env[name] if name in env else text[cursor:close + 1])
                cursor = close + 1
                continue
            out.append("$" if following == "$" else text[cursor:cursor + 2])
            cursor += 2
            continue
        out.append(char)
        cursor += 1
    return "".join(out)


def _resources(container: Mapping[str, Any], where: str) -> Obj:
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    host: Obj = {}
    try:
        if "cpu" in limits:
            host["NanoCpus"] = int(parse_quantity(limits["cpu"]) * 10**9)
        if "memory" in limits:
            host["Memory"] = int(parse_quantity(limits["memory"]))
        if "cpu" in requests:
            # The kubelet's cgroup cpu.shares for a request: millicores * 1024 / 1000, at least 2.
            host["CpuShares"] = max(2, int(parse_quantity(requests["cpu"]) * 1024))
    except ValueError as exc:
        raise InvalidPod(str(exc), field=f"{where}.resources") from exc
    return host


def _security(pod: ResolvedPod, container: Mapping[str, Any], where: str,
              settings: DockerProviderSettings) -> tuple[str, Obj]:
    """The engine `User` and HostConfig security fields; the container's securityContext overrides the pod's."""
    pod_context: Mapping[str, Any] = pod.spec.get("securityContext") or {}
    context: Mapping[str, Any] = container.get("securityContext") or {}
    field = f"{where}.securityContext"
    for key in _UNSUPPORTED_SECURITY:
        if context.get(key):
            raise InvalidPod(f"{key} is not supported by the Docker provider", field=f"{field}.{key}")
        if pod_context.get(key):
            raise InvalidPod(f"{key} is not supported by the Docker provider", field=f"spec.securityContext.{key}")
    host: Obj = {}
    if context.get("privileged"):
        if not settings.allow_privileged:
            raise InvalidPod("privileged containers are not allowed on this node (provider.allow_privileged)",
                             field=f"{field}.privileged")
        host["Privileged"] = True
    if context.get("readOnlyRootFilesystem"):
        host["ReadonlyRootfs"] = True
    capabilities = context.get("capabilities") or {}
    if capabilities.get("add"):
        host["CapAdd"] = list(capabilities["add"])
    if capabilities.get("drop"):
        host["CapDrop"] = list(capabilities["drop"])
    options: list[str] = []
    if context.get("allowPrivilegeEscalation") is False:
        options.append("no-new-privileges")
    seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
    if seccomp.get("type") == "Unconfined":
        options.append("seccomp=unconfined")
    elif seccomp.get("type") == "Localhost":
        raise InvalidPod("Localhost seccomp profiles are not supported by the Docker provider",
                         field=f"{field}.seccompProfile")
    if options:
        host["SecurityOpt"] = options
    # fsGroup joins the supplemental groups, as the kubelet does for the container's processes.
    groups = [str(g) for g in pod_context.get("supplementalGroups") or []]
    if pod_context.get("fsGroup") is not None:
        groups.append(str(pod_context["fsGroup"]))
    if groups:
        host["GroupAdd"] = groups
    return _user(context, pod_context, field), host


def _user(context: Mapping[str, Any], pod_context: Mapping[str, Any], field: str) -> str:
    user = context.get("runAsUser", pod_context.get("runAsUser"))
    group = context.get("runAsGroup", pod_context.get("runAsGroup"))
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if non_root and user == 0:
        raise InvalidPod("runAsNonRoot is set but runAsUser is 0", field=f"{field}.runAsUser")
    if group is not None and user is None:
        raise InvalidPod("runAsGroup without runAsUser is not supported by the Docker provider",
                         field=f"{field}.runAsGroup")
    if user is None:
        return ""
    return f"{user}:{group}" if group is not None else str(user)

