"""A container's probes and lifecycle hooks as `Container.N.*` parameters.

ECI runs readiness and liveness probes (exec, httpGet, tcpSocket) and postStart/preStop hooks (exec, httpGet,
tcpSocket) itself. It has no startup probe and no gRPC probe: a startupProbe delays the liveness probe by its whole
window (what it exists for), gRPC is an `InvalidPod` naming the field. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vnode.errors import InvalidPod

Obj = dict[str, Any]
_TIMINGS = (("initialDelaySeconds", "InitialDelaySeconds"), ("periodSeconds", "PeriodSeconds"),
            ("timeoutSeconds", "TimeoutSeconds"), ("successThreshold", "SuccessThreshold"),
            ("failureThreshold", "FailureThreshold"))
# API defaulting of a probe's periodSeconds and failureThreshold.
_DEFAULT_PERIOD, _DEFAULT_FAILURES = 10, 3
_HOOKS = (("postStart", "PostStart"), ("preStop", "PreStop"))


def probe_params(container: Mapping[str, Any], where: str) -> Obj:
    """`ReadinessProbe` and `LivenessProbe` of an app container."""
    out: Obj = {}
    startup = container.get("startupProbe")
    if startup:
        _handler(startup, container, f"{where}.startupProbe", probe=True)
    if container.get("readinessProbe"):
        out["ReadinessProbe"] = _probe(container["readinessProbe"], container, f"{where}.readinessProbe")
    if container.get("livenessProbe"):
        liveness = _probe(container["livenessProbe"], container, f"{where}.livenessProbe")
        if startup:
            # Kubernetes holds liveness back until the startup probe succeeds, at most this long.
            window = (int(startup.get("initialDelaySeconds") or 0) +
                      int(startup.get("periodSeconds") or _DEFAULT_PERIOD) *
                      int(startup.get("failureThreshold") or _DEFAULT_FAILURES))
            liveness["InitialDelaySeconds"] = int(liveness.get("InitialDelaySeconds") or 0) + window
        out["LivenessProbe"] = liveness
    return out


def lifecycle_params(container: Mapping[str, Any], where: str) -> Obj:
    """`Lifecycle{PostStart,PreStop}Handler*` of an app container (flat names, as ECI spells them)."""
    out: Obj = {}
    lifecycle = container.get("lifecycle") or {}
    for hook, wire in _HOOKS:
        if lifecycle.get(hook):
            handler = _handler(lifecycle[hook], container, f"{where}.lifecycle.{hook}", probe=False)
            out.update({f"Lifecycle{wire}Handler{key}": value for key, value in handler.items()})
    return out


def _probe(probe: Mapping[str, Any], container: Mapping[str, Any], where: str) -> Obj:
    out = _nested(_handler(probe, container, where, probe=True))
    out.update({wire: int(probe[key]) for key, wire in _TIMINGS if probe.get(key) is not None})
    return out


def _nested(handler: Obj) -> Obj:
    # Probes nest their handler (`HttpGet.Path`, `Exec.Command.N`); hooks flatten it (`HttpGetPath`, `Exec.N`).
    if "Exec" in handler:
        return {"Exec": {"Command": handler["Exec"]}}
    if "HttpGetPort" in handler:
        return {"HttpGet": {"Path": handler["HttpGetPath"], "Port": handler["HttpGetPort"],
                            "Scheme": handler["HttpGetScheme"]}}
    return {"TcpSocket": {"Port": handler["TcpSocketPort"]}}


def _handler(handler: Mapping[str, Any], container: Mapping[str, Any], where: str, *, probe: bool) -> Obj:
    """One handler in the hooks' flat form; probes refuse what their ECI form cannot carry (host, headers)."""
    if (action := handler.get("exec")) is not None:
        command = [str(part) for part in action.get("command") or []]
        if not command:
            raise InvalidPod("exec needs a command", field=f"{where}.exec.command")
        return {"Exec": command}
    if (action := handler.get("httpGet")) is not None:
        if probe:
            for key in ("host", "httpHeaders"):
                if action.get(key):
                    raise InvalidPod(f"ECI probes take no {key}", field=f"{where}.httpGet.{key}")
        out: Obj = {"HttpGetPath": str(action.get("path") or "/"),
                    "HttpGetPort": _port(action.get("port"), container, f"{where}.httpGet.port"),
                    "HttpGetScheme": str(action.get("scheme") or "HTTP").upper()}
        if action.get("host"):
            out["HttpGetHost"] = str(action["host"])
        headers = [{"Name": h.get("name", ""), "Value": h.get("value", "")} for h in action.get("httpHeaders") or []]
        if headers:
            out["HttpGetHttpHeader"] = headers
        return out
    if (action := handler.get("tcpSocket")) is not None:
        if probe and action.get("host"):
            raise InvalidPod("ECI probes take no host", field=f"{where}.tcpSocket.host")
        out = {"TcpSocketPort": _port(action.get("port"), container, f"{where}.tcpSocket.port")}
        if action.get("host"):
            out["TcpSocketHost"] = str(action["host"])
        return out
    if handler.get("grpc") is not None:
        raise InvalidPod("ECI has no gRPC probes", field=f"{where}.grpc")
    if handler.get("sleep") is not None:
        raise InvalidPod("ECI has no sleep hooks; use exec with a sleep command", field=f"{where}.sleep")
    raise InvalidPod("names no handler ECI knows (exec, httpGet, tcpSocket)", field=where)


def _port(port: Any, container: Mapping[str, Any], where: str) -> int:
    """A number, or the name of one of the container's ports (an IntOrString)."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if port and declared.get("name") == port:
            return int(declared["containerPort"])
    raise InvalidPod(f"{port!r} is not a port number or the name of one of the container's ports", field=where)
