"""One `Container.N.*` / `InitContainer.N.*` group of CreateContainerGroup (and UpdateContainerGroup) parameters,
read into a `ContainerSpec` and validated as ECI does: InvalidParameter / MissingParameter naming the parameter.

Keys are as the SDK and vnode's provider flatten them (eci.md §1): `Command.M`, `Arg.M`, `EnvironmentVar.M.Key`
(+ `.FieldRef.FieldPath`), `Port.M.Port/Protocol`, `VolumeMount.M.*`, probes nested (`ReadinessProbe.HttpGet.Path`,
`.Exec.Command.M`, `.TcpSocket.Port`), lifecycle hooks flat (`LifecyclePreStopHandlerExec.M`,
`LifecyclePostStartHandlerHttpGetPort`, ...), `SecurityContext.*`. It must not know about groups or runtimes.
"""

from __future__ import annotations

from collections.abc import Collection

from vnode.sandbox.eci import params as p
from vnode.sandbox.eci.errors import invalid, missing
from vnode.sandbox.eci.model import ContainerSpec, EnvVar, Handler, Probe, SecurityContext, VolumeMount

_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_PROTOCOLS = ("TCP", "UDP")
_SCHEMES = ("HTTP", "HTTPS")
# FieldRef paths ECI resolves in a container's env (its API reference documents only the pod IP).
_FIELD_PATHS = ("status.podIP",)
_TERMINATION_POLICIES = ("File", "FallbackToLogsOnError")
MAX_PORT = 65535


def _sub(fields: p.Params, prefix: str) -> dict[str, str]:
    """The keys under `prefix.`, relative to it."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in fields.items() if k.startswith(head)}


def container_spec(fields: p.Params, where: str, *, volumes: Collection[str] | None = None,
                   init: bool = False) -> ContainerSpec:
    """One container's parameters, keys relative to `where` (e.g. `Container.1`); `volumes` are the group's volume
    names its mounts may use (None: not checked)."""
    for name in ("Image", "Name"):
        if not p.present(fields, name):
            raise missing(f"{where}.{name}")
    policy = p.present(fields, "ImagePullPolicy") or "IfNotPresent"
    if policy not in _PULL_POLICIES:
        raise invalid(f"{where}.ImagePullPolicy", f"one of {', '.join(_PULL_POLICIES)}")
    env = _env(fields, where)
    termination = p.present(fields, "TerminationMessagePolicy") or ""
    if termination and termination not in _TERMINATION_POLICIES:
        raise invalid(f"{where}.TerminationMessagePolicy", f"one of {', '.join(_TERMINATION_POLICIES)}")
    return ContainerSpec(
        name=fields["Name"], image=fields["Image"], cpu=_size(fields, "Cpu", where),
        memory=_size(fields, "Memory", where), gpu=p.integer(fields, "Gpu", 0, low=0, high=16),
        commands=tuple(p.listed(fields, "Command")), args=tuple(p.listed(fields, "Arg")),
        env=tuple((e.key, e.value) for e in env if not e.field_path), env_vars=env,
        working_dir=p.present(fields, "WorkingDir") or "", image_pull_policy=policy, ports=_ports(fields, where),
        volume_mounts=_mounts(fields, where, volumes),
        readiness_probe=None if init else _probe(fields, "ReadinessProbe", where),
        liveness_probe=None if init else _probe(fields, "LivenessProbe", where),
        startup_probe=None if init else _probe(fields, "StartupProbe", where),
        security_context=_security(fields, where),
        post_start=None if init else _handler(fields, "LifecyclePostStartHandler", where),
        pre_stop=None if init else _handler(fields, "LifecyclePreStopHandler", where),
        stdin=p.boolean(fields, "Stdin"), stdin_once=p.boolean(fields, "StdinOnce"), tty=p.boolean(fields, "Tty"),
        termination_message_path=p.present(fields, "TerminationMessagePath") or "",
        termination_message_policy=termination)


def _size(fields: p.Params, name: str, where: str) -> float:
    value = p.number(fields, name, 0.0) or 0.0
    if value < 0:
        raise invalid(f"{where}.{name}", "must not be negative")
    return value


def _env(fields: p.Params, where: str) -> tuple[EnvVar, ...]:
    found = []
    for n, var in enumerate(p.indexed(fields, "EnvironmentVar"), start=1):
        key = p.present(var, "Key")
        if not key:
            raise missing(f"{where}.EnvironmentVar.{n}.Key")
        path = p.present(var, "FieldRef.FieldPath") or ""
        if path and path not in _FIELD_PATHS:
            raise invalid(f"{where}.EnvironmentVar.{n}.FieldRef.FieldPath", f"only {', '.join(_FIELD_PATHS)}")
        found.append(EnvVar(key, var.get("Value", "") if var.get("Value") != "None" else "", path))
    return tuple(found)


def _ports(fields: p.Params, where: str) -> tuple[tuple[int, str], ...]:
    ports = []
    for n, port in enumerate(p.indexed(fields, "Port"), start=1):
        number = p.optional_int(port, "Port", low=1, high=MAX_PORT)
        if number is None:
            raise missing(f"{where}.Port.{n}.Port")
        protocol = (p.present(port, "Protocol") or "TCP").upper()
        if protocol not in _PROTOCOLS:
            raise invalid(f"{where}.Port.{n}.Protocol", "TCP or UDP")
        ports.append((number, protocol))
    return tuple(ports)


def _mounts(fields: p.Params, where: str, volumes: Collection[str] | None) -> tuple[VolumeMount, ...]:
    mounts = []
    for n, mount in enumerate(p.indexed(fields, "VolumeMount"), start=1):
        at = f"{where}.VolumeMount.{n}"
        name, path = p.present(mount, "Name"), p.present(mount, "MountPath")
        if not name:
            raise missing(f"{at}.Name")
        if not path:
            raise missing(f"{at}.MountPath")
        if volumes is not None and name not in volumes:
            raise invalid(f"{at}.Name", f"no volume named {name!r} in Volume.N")
        if not path.startswith("/"):
            raise invalid(f"{at}.MountPath", "must be an absolute path")
        sub_path = p.present(mount, "SubPath") or ""
        if sub_path.startswith("/") or ".." in sub_path.split("/"):
            raise invalid(f"{at}.SubPath", "a relative path inside the volume")
        mounts.append(VolumeMount(name, path, sub_path, p.boolean(mount, "ReadOnly"),
                                  p.present(mount, "MountPropagation") or ""))
    return tuple(mounts)


def _probe(fields: p.Params, name: str, where: str) -> Probe | None:
    probe = _sub(fields, name)
    if not any(p.present(probe, key) for key in probe):
        return None
    at = f"{where}.{name}"
    command = tuple(p.listed(probe, "Exec.Command"))
    http_port = p.optional_int(probe, "HttpGet.Port", low=1, high=MAX_PORT) or 0
    tcp_port = p.optional_int(probe, "TcpSocket.Port", low=1, high=MAX_PORT) or 0
    if sum((bool(command), bool(http_port), bool(tcp_port))) != 1:
        raise invalid(at, "exactly one of Exec.Command, HttpGet.Port and TcpSocket.Port")
    scheme = (p.present(probe, "HttpGet.Scheme") or "HTTP").upper()
    if scheme not in _SCHEMES:
        raise invalid(f"{at}.HttpGet.Scheme", "HTTP or HTTPS")
    return Probe(
        exec_command=command, http_path=p.present(probe, "HttpGet.Path") or "/" if http_port else "",
        http_port=http_port, http_scheme=scheme if http_port else "", tcp_port=tcp_port,
        initial_delay_seconds=p.integer(probe, "InitialDelaySeconds", 0, low=0, high=86400),
        period_seconds=p.integer(probe, "PeriodSeconds", 10, low=1, high=86400),
        timeout_seconds=p.integer(probe, "TimeoutSeconds", 1, low=1, high=86400),
        success_threshold=p.integer(probe, "SuccessThreshold", 1, low=1, high=1000),
        failure_threshold=p.integer(probe, "FailureThreshold", 3, low=1, high=1000))


def _security(fields: p.Params, where: str) -> SecurityContext | None:
    context = _sub(fields, "SecurityContext")
    # RunAsGroup, RunAsNonRoot and Privileged are API-only fields; they are accepted nested or flat.
    for key in ("RunAsGroup", "RunAsNonRoot", "Privileged"):
        if p.present(fields, f"SecurityContext{key}") is not None:
            context.setdefault(key, fields[f"SecurityContext{key}"])
    if not any(p.present(context, key) for key in context):
        return None
    return SecurityContext(
        read_only_root_filesystem=p.boolean(context, "ReadOnlyRootFilesystem"),
        run_as_user=p.optional_int(context, "RunAsUser", low=0, high=2**31 - 1),
        run_as_group=p.optional_int(context, "RunAsGroup", low=0, high=2**31 - 1),
        run_as_non_root=p.boolean(context, "RunAsNonRoot"), privileged=p.boolean(context, "Privileged"),
        capabilities_add=tuple(p.listed(context, "Capability.Add")))


def _handler(fields: p.Params, name: str, where: str) -> Handler | None:
    # Hooks are flat: `LifecyclePreStopHandlerExec.M`, `...HttpGetPort`, `...HttpGetHttpHeader.M.Name`.
    keys = [k for k in fields if k.startswith(name) and p.present(fields, k) is not None]
    if not keys:
        return None
    command = tuple(p.listed(fields, f"{name}Exec"))
    http_port = p.optional_int(fields, f"{name}HttpGetPort", low=1, high=MAX_PORT) or 0
    tcp_port = p.optional_int(fields, f"{name}TcpSocketPort", low=1, high=MAX_PORT) or 0
    if sum((bool(command), bool(http_port), bool(tcp_port))) != 1:
        raise invalid(f"{where}.{name}", "exactly one of Exec, HttpGetPort and TcpSocketPort")
    headers = tuple((h.get("Name", ""), h.get("Value", "")) for h in p.indexed(fields, f"{name}HttpGetHttpHeader"))
    return Handler(exec_command=command, http_host=p.present(fields, f"{name}HttpGetHost") or "",
                   http_port=http_port, http_path=p.present(fields, f"{name}HttpGetPath") or "",
                   http_scheme=p.present(fields, f"{name}HttpGetScheme") or "", http_headers=headers,
                   tcp_host=p.present(fields, f"{name}TcpSocketHost") or "", tcp_port=tcp_port)
