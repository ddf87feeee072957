"""One pod container as `Container.N.*` (or `InitContainer.N.*`) CreateContainerGroup parameters.

Owns image, command and args (`$(VAR)` expanded from the resolved env, as the kubelet does), env (a Secret's value
hides the container's env from Describe answers), ports, mounts, per-container vCPU/GiB/GPU, the securityContext
subset ECI has, stdin/tty and termination messages; probes and hooks come from probes.py. Everything ECI cannot do is
an `InvalidPod` naming the field. Pure; must never log or put an env value in an error message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from vnode.errors import InvalidPod
from vnode.providers.base import ResolvedPod
from vnode.providers.eci.probes import lifecycle_params, probe_params
from vnode.providers.eci.sizing import Need
from vnode.providers.eci.volumes import volume_mounts

Obj = dict[str, Any]
MAX_ARGS = 10  # Container.N.Arg: "You can specify a maximum of 10 arguments."
# ECI's own agent listens on these in every instance (virtual node limits).
_RESERVED_PORTS = frozenset({111, 10250, 10255})
_PROTOCOLS = ("TCP", "UDP")
# The one field path EnvironmentVar.N.FieldRef.FieldPath documents: the instance's IP, unknown until it runs.
_POD_IP = "status.podIP"
_REFERENCE = re.compile(r"\$(\$|\(([^)]*)\))")


def container_params(pod: ResolvedPod, container: Mapping[str, Any], where: str, need: Need, *,
                     init: bool) -> Obj:
    name = container.get("name", "")
    if not container.get("image"):
        raise InvalidPod("a container needs an image", field=f"{where}.image")
    if init and container.get("restartPolicy") == "Always":
        raise InvalidPod("ECI does not run sidecar init containers", field=f"{where}.restartPolicy")
    env = pod.env.get(name, ())
    from_pod_ip = _pod_ip_vars(container)
    values = {var.name: var.value for var in env if var.name not in from_pod_ip}

    def expand(text: str) -> str:
        # Kubernetes expansion: `$(NAME)` from the env defined, `$$` is a literal `$`, anything else stays.
        return _REFERENCE.sub(lambda m: "$" if m.group(1) == "$" else values.get(m.group(2), m.group(0)), text)

    out: Obj = {"Name": name, "Image": container["image"], **_argv(container, where, expand)}
    for key, wire in (("imagePullPolicy", "ImagePullPolicy"), ("workingDir", "WorkingDir"),
                      ("terminationMessagePath", "TerminationMessagePath"),
                      ("terminationMessagePolicy", "TerminationMessagePolicy")):
        if container.get(key):
            out[wire] = str(container[key])
    out["EnvironmentVar"] = [{"Key": var.name, "FieldRef": {"FieldPath": _POD_IP}} if var.name in from_pod_ip
                             else {"Key": var.name, "Value": var.value} for var in env]
    if not init and any(var.sensitive for var in env):
        # Describe answers then leave the container's env out (EnvironmentVarHide).
        out["EnvironmentVarHide"] = "true"
    out["Port"] = _ports(container, where)
    out["VolumeMount"] = volume_mounts(pod, container, where, expand)
    if need.cpu is not None:
        out["Cpu"] = float(need.cpu)
    if need.memory is not None:
        out["Memory"] = float(need.memory)
    if need.gpu:
        out["Gpu"] = need.gpu
    out.update(_security(pod, container, where, init=init))
    if not init:
        out.update({wire: "true" for key, wire in (("stdin", "Stdin"), ("stdinOnce", "StdinOnce"), ("tty", "Tty"))
                    if container.get(key)})
        out.update(probe_params(container, where))
        out.update(lifecycle_params(container, where))
    return {key: value for key, value in out.items() if value != []}


def _pod_ip_vars(container: Mapping[str, Any]) -> set[str]:
    """Env names whose last definition is `fieldRef: status.podIP`: sent as FieldRef for ECI to fill in."""
    found: set[str] = set()
    for var in container.get("env") or []:
        field_path = ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field_path == _POD_IP:
            found.add(var["name"])
        else:
            found.discard(var["name"])
    return found


def _argv(container: Mapping[str, Any], where: str, expand: Callable[[str], str]) -> Obj:
    command = [expand(str(part)) for part in container.get("command") or []]
    args = [expand(str(part)) for part in container.get("args") or []]
    if len(args) > MAX_ARGS:
        if not command:
            raise InvalidPod(f"ECI takes at most {MAX_ARGS} args; with more, vnode passes command and args together "
                             "as the command, which needs `command` set (the image's ENTRYPOINT is not known here)",
                             field=f"{where}.args")
        # With `command` set the image's ENTRYPOINT and CMD are both ignored: argv is command + args, exactly.
        command, args = command + args, []
    return {"Command": command, "Arg": args}


def _ports(container: Mapping[str, Any], where: str) -> list[Obj]:
    out = []
    for index, port in enumerate(container.get("ports") or []):
        field = f"{where}.ports[{index}]"
        if port.get("hostPort"):
            raise InvalidPod("ECI has no host ports", field=f"{field}.hostPort")
        number, protocol = int(port.get("containerPort") or 0), str(port.get("protocol") or "TCP")
        if protocol not in _PROTOCOLS:
            raise InvalidPod(f"ECI exposes only {' and '.join(_PROTOCOLS)} ports", field=f"{field}.protocol")
        if number in _RESERVED_PORTS:
            raise InvalidPod(f"ECI reserves port {number} in every instance", field=f"{field}.containerPort")
        out.append({"Port": number, "Protocol": protocol})
    return out


def _security(pod: ResolvedPod, container: Mapping[str, Any], where: str, *, init: bool) -> Obj:
    """The subset ECI has; the container's securityContext overrides the pod's, as in Kubernetes."""
    pod_context: Mapping[str, Any] = pod.spec.get("securityContext") or {}
    context: Mapping[str, Any] = container.get("securityContext") or {}
    field = f"{where}.securityContext"
    if context.get("privileged"):
        raise InvalidPod("ECI does not run privileged containers", field=f"{field}.privileged")
    user = context.get("runAsUser", pod_context.get("runAsUser"))
    group = context.get("runAsGroup", pod_context.get("runAsGroup"))
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    if non_root and user == 0:
        # The kubelet refuses to start such a container.
        raise InvalidPod("runAsNonRoot is set but runAsUser is 0", field=f"{field}.runAsUser")
    nested: Obj = {}
    if user is not None:
        nested["RunAsUser"] = int(user)
    if context.get("readOnlyRootFilesystem"):
        nested["ReadOnlyRootFilesystem"] = "true"
    added = [str(c) for c in (context.get("capabilities") or {}).get("add") or []]
    if added:
        nested["Capability"] = {"Add": added}
    out: Obj = {"SecurityContext": nested} if nested else {}
    # Top-level names, on app containers only: the API documents neither for InitContainer.N.
    if not init and group is not None:
        out["SecurityContextRunAsGroup"] = int(group)
    if not init and non_root:
        out["SecurityContextRunAsNonRoot"] = "true"
    return out
