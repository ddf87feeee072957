"""Server-side printing: objects rendered as a meta.k8s.io/v1 Table, which is what `kubectl get` asks for.

Owns the columns and cell values of kube-apiserver's printers (pkg/printers/internalversion) for the kinds the
sandbox serves, the generic Name / Created At fallback, and apimachinery's duration.HumanDuration. The server
prints wide (every column, priority > 0 included); kubectl hides priority columns unless given -o wide.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

Cell = str | int
_Printer = Callable[[Mapping[str, Any], datetime], list[Cell]]


def human_duration(elapsed: timedelta) -> str:
    """duration.HumanDuration: coarser as it grows, e.g. 5s, 2m30s, 10m, 3h5m, 2d3h, 90d, 2y."""
    seconds = int(elapsed.total_seconds())  # truncated toward zero like Go's int(d.Seconds())
    # Up to two seconds in the future is clock skew and reads as now; further is invalid.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(when: datetime | None, now: datetime) -> str:
    """translateTimestampSince: a zero (absent) timestamp prints as <unknown>."""
    if when is None:
        return "<unknown>"
    return human_duration((now if now.tzinfo else now.replace(tzinfo=UTC)) - when)


def _age(value: Any, now: datetime) -> str:
    return _since(_time(value), now)


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    return "" if value is None else str(value)


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _col(name: str, description: str, type_: str = "string", priority: int = 0,
         fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_NAME = _col("Name", "Name must be unique within a namespace.", fmt="name")
_AGE = _col("Age", "CreationTimestamp is the server time when this object was created.")


def _name(obj: Mapping[str, Any]) -> str:
    return _str(obj, "metadata", "name")


def _created(obj: Mapping[str, Any], now: datetime) -> str:
    return _age(_get(obj, "metadata", "creationTimestamp"), now)


# --- pods ----------------------------------------------------------------------------------------------

_POD_COLUMNS = [
    _NAME,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                     "container in this pod has restarted."),
    _AGE,
    _col("IP", "IP address allocated to the pod.", priority=1),
    _col("Node", "The node this pod is scheduled onto.", priority=1),
    _col("Nominated Node", "The node a preempting pod expects to be scheduled onto.", priority=1),
    _col("Readiness Gates", "Extra pod conditions evaluated for pod readiness.", priority=1),
]


def _condition_true(conditions: list[Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions)


def _terminated_reason(state: Mapping[str, Any]) -> str:
    # A terminated container without a reason is described by its signal, else its exit code.
    if state.get("reason"):
        return str(state["reason"])
    return f"Signal:{state['signal']}" if state.get("signal") else f"ExitCode:{state.get('exitCode', 0)}"


def _print_pod(pod: Mapping[str, Any], now: datetime) -> list[Cell]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    conditions = _list(status, "conditions")
    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"
    init_specs = _list(spec, "initContainers")
    # Init containers with restartPolicy Always are sidecars: they count as containers of the pod.
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total, ready = len(_list(spec, "containers")) + len(sidecars), 0
    restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    def finished(cs: Mapping[str, Any]) -> datetime | None:
        return _time(_get(cs, "lastState", "terminated", "finishedAt"))

    initializing = False
    for i, cs in enumerate(_list(status, "initContainerStatuses")):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = max(filter(None, (last_restart, finished(cs))), default=None)
        sidecar = cs.get("name") in sidecars
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = max(filter(None, (last_sidecar_restart, finished(cs))), default=None)
        terminated, waiting = _get(cs, "state", "terminated"), _get(cs, "state", "waiting")
        if isinstance(terminated, Mapping) and not terminated.get("exitCode"):
            continue
        if sidecar and cs.get("started"):
            ready += 1 if cs.get("ready") else 0
            continue
        if isinstance(terminated, Mapping):
            reason = "Init:" + _terminated_reason(terminated)
        elif isinstance(waiting, Mapping) and waiting.get("reason") not in (None, "", "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        # The status of the first container that is not running wins, so walk the list backwards.
        for cs in reversed(_list(status, "containerStatuses")):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = max(filter(None, (last_restart, finished(cs))), default=None)
            terminated, waiting = _get(cs, "state", "terminated"), _get(cs, "state", "waiting")
            if isinstance(waiting, Mapping) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, Mapping):
                reason = _terminated_reason(terminated)
            elif cs.get("ready") and isinstance(_get(cs, "state", "running"), Mapping):
                has_running = True
                ready += 1
        # A container that completed while another still runs leaves the pod Running (or NotReady).
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if _get(pod, "metadata", "deletionTimestamp") and _str(status, "reason") == "NodeLost":
        reason = "Unknown"
    elif _get(pod, "metadata", "deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    # Recent kubectl shows when the last restart happened, from the newest lastState.terminated.finishedAt.
    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell += f" ({_since(last_restart, now)} ago)"
    pod_ips = _list(status, "podIPs")
    gates = _list(spec, "readinessGates")
    by_type = {c.get("type"): c.get("status") for c in reversed(conditions)}
    passed = sum(by_type.get(g.get("conditionType")) == "True" for g in gates)
    return [
        _name(pod), f"{ready}/{total}", reason, restarts_cell, _created(pod, now),
        _str(pod_ips[0], "ip") if pod_ips and pod_ips[0].get("ip") else _str(status, "podIP") or "<none>",
        _str(spec, "nodeName") or "<none>",
        _str(status, "nominatedNodeName") or "<none>",
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]


def _pod_row_conditions(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    # Terminal pods carry a Completed row condition, which kubectl uses to tell finished rows apart.
    phase = _str(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


# --- nodes ---------------------------------------------------------------------------------------------

_NODE_COLUMNS = [
    _NAME,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    _AGE,
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
    _col("External-IP", "List of addresses reachable to the node.", priority=1),
    _col("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
    _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
    _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.",
         priority=1),
]


def _print_node(node: Mapping[str, Any], now: datetime) -> list[Cell]:
    ready = next((c for c in _list(node, "status", "conditions") if c.get("type") == "Ready"), None)
    # Only the Ready condition is shown: "Ready" when True, "NotReady" for False or Unknown.
    status = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if _get(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    labels = _get(node, "metadata", "labels") or {}
    # Roles come from node-role.kubernetes.io/<role> keys and the legacy kubernetes.io/role value.
    roles = {k.removeprefix("node-role.kubernetes.io/") for k in labels
             if k.startswith("node-role.kubernetes.io/") and k != "node-role.kubernetes.io/"}
    roles |= {str(labels["kubernetes.io/role"])} if labels.get("kubernetes.io/role") else set()
    addresses = _list(node, "status", "addresses")

    def address(kind: str) -> str:
        return next((_str(a, "address") for a in addresses if a.get("type") == kind), "<none>")

    info = _get(node, "status", "nodeInfo") or {}
    return [
        _name(node), ",".join(status), ",".join(sorted(roles)) or "<none>", _created(node, now),
        _str(info, "kubeletVersion"), address("InternalIP"), address("ExternalIP"),
        _str(info, "osImage") or "<unknown>", _str(info, "kernelVersion") or "<unknown>",
        _str(info, "containerRuntimeVersion") or "<unknown>",
    ]


# --- events --------------------------------------------------------------------------------------------

_EVENT_COLUMNS = [
    _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    _col("Type", "Type of this event (Normal, Warning)."),
    _col("Reason", "A short, machine understandable string that gives the reason for the transition."),
    _col("Object", "The object that this event is about."),
    _col("Subobject", "The sub-object of the involved object this event is about.", priority=1),
    _col("Source", "The component reporting this event.", priority=1),
    _col("Message", "A human-readable description of the status of this operation."),
    _col("First Seen", "The time at which the event was first recorded.", priority=1),
    _col("Count", "The number of times this event has occurred.", priority=1),
    _col("Name", "Name must be unique within a namespace.", priority=1, fmt="name"),
]


def _print_event(event: Mapping[str, Any], now: datetime) -> list[Cell]:
    # events.k8s.io objects name the core v1 fields differently; read whichever shape was stored.
    def pick(core: str, events: str) -> Any:
        return event.get(core) if event.get(core) not in (None, "") else event.get(events)

    involved = pick("involvedObject", "regarding") or {}
    first = pick("firstTimestamp", "deprecatedFirstTimestamp") or event.get("eventTime")
    last = pick("lastTimestamp", "deprecatedLastTimestamp") or first
    count = pick("count", "deprecatedCount") or 1  # singleton events of the new API carry no count
    series = event.get("series")
    if isinstance(series, Mapping):
        last, count = series.get("lastObservedTime"), series.get("count") or count
    kind = _str(involved, "kind").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = pick("source", "deprecatedSource") or {}
    component = _str(source, "component") or str(pick("reportingComponent", "reportingController") or "")
    host = _str(source, "host") or str(event.get("reportingInstance") or "")
    return [
        _age(last, now), _str(event, "type"), _str(event, "reason"), target, _str(involved, "fieldPath"),
        f"{component}, {host}" if host else component, str(pick("message", "note") or "").strip(),
        _age(first, now), int(count), _name(event),
    ]


# --- the rest ------------------------------------------------------------------------------------------

def _csr_condition(csr: Mapping[str, Any]) -> str:
    kinds = {c.get("type") for c in _list(csr, "status", "conditions")}
    # Denied takes precedence over Approved; Failed and an issued certificate are appended.
    status = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    status += ",Failed" if "Failed" in kinds else ""
    return status + (",Issued" if _get(csr, "status", "certificate") else "")


def _service_external_ip(svc: Mapping[str, Any]) -> str:
    external = [str(ip) for ip in _get(svc, "spec", "externalIPs") or []]
    kind = _str(svc, "spec", "type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        lb = _list(svc, "status", "loadBalancer", "ingress")
        ingress = {_str(i, "ip") or _str(i, "hostname") for i in lb}
        return ",".join(sorted(ingress - {""}) + external) or "<pending>"
    return _str(svc, "spec", "externalName") if kind == "ExternalName" else "<unknown>"


def _service_ports(svc: Mapping[str, Any]) -> str:
    ports = []
    for p in _list(svc, "spec", "ports"):
        protocol = _str(p, "protocol") or "TCP"  # the apiserver defaults the protocol to TCP
        ports.append(f"{p.get('port')}:{p['nodePort']}/{protocol}" if p.get("nodePort")
                     else f"{p.get('port')}/{protocol}")
    return ",".join(ports) or "<none>"


def _print_service(svc: Mapping[str, Any], now: datetime) -> list[Cell]:
    cluster_ips = _get(svc, "spec", "clusterIPs") or []
    cluster_ip = str(cluster_ips[0]) if cluster_ips else _str(svc, "spec", "clusterIP") or "<none>"
    selector = _get(svc, "spec", "selector") or {}
    return [_name(svc), _str(svc, "spec", "type"), cluster_ip, _service_external_ip(svc), _service_ports(svc),
            _created(svc, now), ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"]


def _print_csr(csr: Mapping[str, Any], now: datetime) -> list[Cell]:
    seconds = _get(csr, "spec", "expirationSeconds")
    duration = human_duration(timedelta(seconds=int(seconds))) if isinstance(seconds, int) else "<none>"
    return [_name(csr), _created(csr, now), _str(csr, "spec", "signerName") or "<none>",
            _str(csr, "spec", "username"), duration, _csr_condition(csr)]


def _count(obj: Mapping[str, Any], *fields: str) -> int:
    return sum(len(v) for f in fields if isinstance(v := obj.get(f), Mapping | list))


_PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], _Printer]] = {
    ("", "pods"): (_POD_COLUMNS, _print_pod),
    ("", "nodes"): (_NODE_COLUMNS, _print_node),
    ("", "events"): (_EVENT_COLUMNS, _print_event),
    # events.k8s.io Events share core Event storage and printer.
    ("events.k8s.io", "events"): (_EVENT_COLUMNS, _print_event),
    ("", "namespaces"): ([_NAME, _col("Status", "The status of the namespace"), _AGE],
                         lambda o, now: [_name(o), _str(o, "status", "phase"), _created(o, now)]),
    ("coordination.k8s.io", "leases"): (
        [_NAME, _col("Holder", "The identity of the holder of the current lease."), _AGE],
        lambda o, now: [_name(o), _str(o, "spec", "holderIdentity"), _created(o, now)]),
    ("certificates.k8s.io", "certificatesigningrequests"): (
        [_NAME, _AGE, _col("SignerName", "The signer the certificate is requested from."),
         _col("Requestor", "The user that created the request."),
         _col("RequestedDuration", "The requested duration of validity of the issued certificate."),
         _col("Condition", "The approval state of the request.")], _print_csr),
    ("", "configmaps"): ([_NAME, _col("Data", "The number of data and binaryData entries."), _AGE],
                         lambda o, now: [_name(o), _count(o, "data", "binaryData"), _created(o, now)]),
    ("", "secrets"): ([_NAME, _col("Type", "Used to facilitate programmatic handling of secret data."),
                       _col("Data", "The number of data entries."), _AGE],
                      lambda o, now: [_name(o), _str(o, "type"), _count(o, "data"), _created(o, now)]),
    ("", "services"): ([_NAME, _col("Type", "How the Service is exposed."),
                        _col("Cluster-IP", "The IP address of the service."),
                        _col("External-IP", "IP addresses for which nodes accept traffic for this service."),
                        _col("Port(s)", "The list of ports that are exposed by this service."), _AGE,
                        _col("Selector", "Route service traffic to pods with matching labels.", priority=1)],
                       _print_service),
    ("", "serviceaccounts"): ([_NAME, _col("Secrets", "The number of secrets this account may use."), _AGE],
                              lambda o, now: [_name(o), _count(o, "secrets"), _created(o, now)]),
}


def _print_default(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    # rest.DefaultTableConvertor prints the raw creation time in RFC 3339, the zero time when absent.
    created = _time(_get(obj, "metadata", "creationTimestamp"))
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
    return [_name(obj), stamp]


_DEFAULT = ([_NAME, _col("Created At", "CreationTimestamp is the server time when this object was created.",
                         type_="date")], _print_default)


def to_table(group: str, resource: str, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
             now: datetime, list_metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table of objects; include_object is the request's includeObject parameter."""
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(f'unrecognized includeObject value: "{include_object}"')
    columns, printer = _PRINTERS.get((group, resource), _DEFAULT)
    rows: list[dict[str, Any]] = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer(obj, now)}
        if (group, resource) == ("", "pods") and (conditions := _pod_row_conditions(obj)):
            row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = copy.deepcopy(obj)
        elif include_object == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": copy.deepcopy(obj.get("metadata") or {})}
        rows.append(row)
    meta = list_metadata or {}
    metadata = {k: meta[k] for k in ("resourceVersion", "continue", "remainingItemCount")
                if meta.get(k) not in (None, "")}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
            "columnDefinitions": copy.deepcopy(columns), "rows": rows}
