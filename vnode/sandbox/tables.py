"""Server-side printing: objects rendered as a meta.k8s.io/v1 Table, which is what `kubectl get` asks for.

Owns the columns and cell values of kube-apiserver's printers (pkg/printers/internalversion) for the core kinds
the sandbox serves and the generic Name / Created At fallback; RBAC and apps printers are in `tables_workloads.py`,
shared cell helpers in `table_cells.py`. The server prints wide (every column, priority > 0 included); kubectl
hides priority columns unless given -o wide.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from vnode.sandbox import tables_workloads
from vnode.sandbox.table_cells import (
    AGE,
    NAME,
    Cell,
    Printer,
    age,
    age_of,
    column,
    dig,
    human_duration,
    mappings,
    name_of,
    parse_time,
    since,
    text,
)

__all__ = ["human_duration", "to_table"]

# --- pods ----------------------------------------------------------------------------------------------

_POD_COLUMNS = [
    NAME,
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
                       "container in this pod has restarted."),
    AGE,
    column("IP", "IP address allocated to the pod.", priority=1),
    column("Node", "The node this pod is scheduled onto.", priority=1),
    column("Nominated Node", "The node a preempting pod expects to be scheduled onto.", priority=1),
    column("Readiness Gates", "Extra pod conditions evaluated for pod readiness.", priority=1),
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
    conditions = mappings(status, "conditions")
    phase = text(status, "phase")
    reason = text(status, "reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"
    init_specs = mappings(spec, "initContainers")
    # Init containers with restartPolicy Always are sidecars: they count as containers of the pod.
    sidecars = {c.get("name") for c in init_specs if c.get("restartPolicy") == "Always"}
    total, ready = len(mappings(spec, "containers")) + len(sidecars), 0
    restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None

    def finished(cs: Mapping[str, Any]) -> datetime | None:
        return parse_time(dig(cs, "lastState", "terminated", "finishedAt"))

    initializing = False
    for i, cs in enumerate(mappings(status, "initContainerStatuses")):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = max(filter(None, (last_restart, finished(cs))), default=None)
        sidecar = cs.get("name") in sidecars
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = max(filter(None, (last_sidecar_restart, finished(cs))), default=None)
        terminated, waiting = dig(cs, "state", "terminated"), dig(cs, "state", "waiting")
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
        for cs in reversed(mappings(status, "containerStatuses")):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = max(filter(None, (last_restart, finished(cs))), default=None)
            terminated, waiting = dig(cs, "state", "terminated"), dig(cs, "state", "waiting")
            if isinstance(waiting, Mapping) and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif isinstance(terminated, Mapping):
                reason = _terminated_reason(terminated)
            elif cs.get("ready") and isinstance(dig(cs, "state", "running"), Mapping):
                has_running = True
                ready += 1
        # A container that completed while another still runs leaves the pod Running (or NotReady).
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"

    if dig(pod, "metadata", "deletionTimestamp") and text(status, "reason") == "NodeLost":
        reason = "Unknown"
    elif dig(pod, "metadata", "deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    # Recent kubectl shows when the last restart happened, from the newest lastState.terminated.finishedAt.
    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell += f" ({since(last_restart, now)} ago)"
    pod_ips = mappings(status, "podIPs")
    gates = mappings(spec, "readinessGates")
    by_type = {c.get("type"): c.get("status") for c in reversed(conditions)}
    passed = sum(by_type.get(g.get("conditionType")) == "True" for g in gates)
    return [
        name_of(pod), f"{ready}/{total}", reason, restarts_cell, age_of(pod, now),
        text(pod_ips[0], "ip") if pod_ips and pod_ips[0].get("ip") else text(status, "podIP") or "<none>",
        text(spec, "nodeName") or "<none>",
        text(status, "nominatedNodeName") or "<none>",
        f"{passed}/{len(gates)}" if gates else "<none>",
    ]


def _pod_row_conditions(pod: Mapping[str, Any]) -> list[dict[str, str]]:
    # Terminal pods carry a Completed row condition, which kubectl uses to tell finished rows apart.
    phase = text(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


# --- nodes ---------------------------------------------------------------------------------------------

_NODE_COLUMNS = [
    NAME,
    column("Status", "The status of the node"),
    column("Roles", "The roles of the node"),
    AGE,
    column("Version", "Kubelet Version reported by the node."),
    column("Internal-IP", "List of addresses reachable to the node.", priority=1),
    column("External-IP", "List of addresses reachable to the node.", priority=1),
    column("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
    column("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
    column("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API.",
           priority=1),
]


def _print_node(node: Mapping[str, Any], now: datetime) -> list[Cell]:
    ready = next((c for c in mappings(node, "status", "conditions") if c.get("type") == "Ready"), None)
    # Only the Ready condition is shown: "Ready" when True, "NotReady" for False or Unknown.
    status = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if dig(node, "spec", "unschedulable") is True:
        status.append("SchedulingDisabled")
    labels = dig(node, "metadata", "labels") or {}
    # Roles come from node-role.kubernetes.io/<role> keys and the legacy kubernetes.io/role value.
    roles = {k.removeprefix("node-role.kubernetes.io/") for k in labels
             if k.startswith("node-role.kubernetes.io/") and k != "node-role.kubernetes.io/"}
    roles |= {str(labels["kubernetes.io/role"])} if labels.get("kubernetes.io/role") else set()
    addresses = mappings(node, "status", "addresses")

    def address(kind: str) -> str:
        return next((text(a, "address") for a in addresses if a.get("type") == kind), "<none>")

    info = dig(node, "status", "nodeInfo") or {}
    return [
        name_of(node), ",".join(status), ",".join(sorted(roles)) or "<none>", age_of(node, now),
        text(info, "kubeletVersion"), address("InternalIP"), address("ExternalIP"),
        text(info, "osImage") or "<unknown>", text(info, "kernelVersion") or "<unknown>",
        text(info, "containerRuntimeVersion") or "<unknown>",
    ]


# --- events --------------------------------------------------------------------------------------------

_EVENT_COLUMNS = [
    column("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    column("Type", "Type of this event (Normal, Warning)."),
    column("Reason", "A short, machine understandable string that gives the reason for the transition."),
    column("Object", "The object that this event is about."),
    column("Subobject", "The sub-object of the involved object this event is about.", priority=1),
    column("Source", "The component reporting this event.", priority=1),
    column("Message", "A human-readable description of the status of this operation."),
    column("First Seen", "The time at which the event was first recorded.", priority=1),
    column("Count", "The number of times this event has occurred.", priority=1),
    column("Name", "Name must be unique within a namespace.", priority=1, fmt="name"),
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
    kind = text(involved, "kind").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = pick("source", "deprecatedSource") or {}
    component = text(source, "component") or str(pick("reportingComponent", "reportingController") or "")
    host = text(source, "host") or str(event.get("reportingInstance") or "")
    return [
        age(last, now), text(event, "type"), text(event, "reason"), target, text(involved, "fieldPath"),
        f"{component}, {host}" if host else component, str(pick("message", "note") or "").strip(),
        age(first, now), int(count), name_of(event),
    ]


# --- the rest ------------------------------------------------------------------------------------------

def _csr_condition(csr: Mapping[str, Any]) -> str:
    kinds = {c.get("type") for c in mappings(csr, "status", "conditions")}
    # Denied takes precedence over Approved; Failed and an issued certificate are appended.
    status = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    status += ",Failed" if "Failed" in kinds else ""
    return status + (",Issued" if dig(csr, "status", "certificate") else "")


def _service_external_ip(svc: Mapping[str, Any]) -> str:
    external = [str(ip) for ip in dig(svc, "spec", "externalIPs") or []]
    kind = text(svc, "spec", "type") or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        lb = mappings(svc, "status", "loadBalancer", "ingress")
        ingress = {text(i, "ip") or text(i, "hostname") for i in lb}
        return ",".join(sorted(ingress - {""}) + external) or "<pending>"
    return text(svc, "spec", "externalName") if kind == "ExternalName" else "<unknown>"


def _service_ports(svc: Mapping[str, Any]) -> str:
    ports = []
    for p in mappings(svc, "spec", "ports"):
        protocol = text(p, "protocol") or "TCP"  # the apiserver defaults the protocol to TCP
        ports.append(f"{p.get('port')}:{p['nodePort']}/{protocol}" if p.get("nodePort")
                     else f"{p.get('port')}/{protocol}")
    return ",".join(ports) or "<none>"


def _print_service(svc: Mapping[str, Any], now: datetime) -> list[Cell]:
    cluster_ips = dig(svc, "spec", "clusterIPs") or []
    cluster_ip = str(cluster_ips[0]) if cluster_ips else text(svc, "spec", "clusterIP") or "<none>"
    selector = dig(svc, "spec", "selector") or {}
    return [name_of(svc), text(svc, "spec", "type"), cluster_ip, _service_external_ip(svc), _service_ports(svc),
            age_of(svc, now), ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "<none>"]


def _print_csr(csr: Mapping[str, Any], now: datetime) -> list[Cell]:
    seconds = dig(csr, "spec", "expirationSeconds")
    duration = human_duration(timedelta(seconds=int(seconds))) if isinstance(seconds, int) else "<none>"
    return [name_of(csr), age_of(csr, now), text(csr, "spec", "signerName") or "<none>",
            text(csr, "spec", "username"), duration, _csr_condition(csr)]


def _count(obj: Mapping[str, Any], *fields: str) -> int:
    return sum(len(v) for f in fields if isinstance(v := obj.get(f), Mapping | list))


_PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Printer]] = {
    **tables_workloads.PRINTERS,
    ("", "pods"): (_POD_COLUMNS, _print_pod),
    ("", "nodes"): (_NODE_COLUMNS, _print_node),
    ("", "events"): (_EVENT_COLUMNS, _print_event),
    # events.k8s.io Events share core Event storage and printer.
    ("events.k8s.io", "events"): (_EVENT_COLUMNS, _print_event),
    ("", "namespaces"): ([NAME, column("Status", "The status of the namespace"), AGE],
                         lambda o, now: [name_of(o), text(o, "status", "phase"), age_of(o, now)]),
    ("coordination.k8s.io", "leases"): (
        [NAME, column("Holder", "The identity of the holder of the current lease."), AGE],
        lambda o, now: [name_of(o), text(o, "spec", "holderIdentity"), age_of(o, now)]),
    ("certificates.k8s.io", "certificatesigningrequests"): (
        [NAME, AGE, column("SignerName", "The signer the certificate is requested from."),
         column("Requestor", "The user that created the request."),
         column("RequestedDuration", "The requested duration of validity of the issued certificate."),
         column("Condition", "The approval state of the request.")], _print_csr),
    ("", "configmaps"): ([NAME, column("Data", "The number of data and binaryData entries."), AGE],
                         lambda o, now: [name_of(o), _count(o, "data", "binaryData"), age_of(o, now)]),
    ("", "secrets"): ([NAME, column("Type", "Used to facilitate programmatic handling of secret data."),
                       column("Data", "The number of data entries."), AGE],
                      lambda o, now: [name_of(o), text(o, "type"), _count(o, "data"), age_of(o, now)]),
    ("", "services"): ([NAME, column("Type", "How the Service is exposed."),
                        column("Cluster-IP", "The IP address of the service."),
                        column("External-IP", "IP addresses for which nodes accept traffic for this service."),
                        column("Port(s)", "The list of ports that are exposed by this service."), AGE,
                        column("Selector", "Route service traffic to pods with matching labels.", priority=1)],
                       _print_service),
    ("", "serviceaccounts"): ([NAME, column("Secrets", "The number of secrets this account may use."), AGE],
                              lambda o, now: [name_of(o), _count(o, "secrets"), age_of(o, now)]),
}


def _print_default(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
    # rest.DefaultTableConvertor prints the raw creation time in RFC 3339, the zero time when absent.
    created = parse_time(dig(obj, "metadata", "creationTimestamp"))
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
    return [name_of(obj), stamp]


_DEFAULT = ([NAME, column("Created At", "CreationTimestamp is the server time when this object was created.",
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
