"""Tables carry the columns and cells kube-apiserver's printers produce for `kubectl get`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vnode.sandbox.tables import human_duration, to_table

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(resource: str, obj: dict[str, Any], group: str = "") -> list[Any]:
    row: list[Any] = to_table(group, resource, [obj], now=NOW)["rows"][0]["cells"]
    return row


def columns(resource: str, group: str = "") -> list[str]:
    return [c["name"] for c in to_table(group, resource, [], now=NOW)["columnDefinitions"]]


def pod(phase: str = "Running", *, statuses: list[dict[str, Any]] | None = None,
        init: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    containers = [{"name": s["name"]} for s in statuses or [{"name": "main"}]]
    obj: dict[str, Any] = {
        "metadata": {"name": "build", "namespace": "ci", "creationTimestamp": ago(minutes=5)},
        "spec": {"containers": containers, "initContainers": [{"name": s["name"]} for s in init or []]},
        "status": {"phase": phase, "containerStatuses": statuses or [],
                   "initContainerStatuses": init or []},
    }
    for key, value in extra.items():
        obj["status" if key in ("conditions", "reason") else "metadata"][key] = value
    return obj


def running(name: str = "main", ready: bool = True, restarts: int = 0) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts,
            "state": {"running": {"startedAt": ago(minutes=4)}}}


def waiting(reason: str, name: str = "main") -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0, "state": {"waiting": {"reason": reason}}}


def terminated(reason: str, exit_code: int, name: str = "main") -> dict[str, Any]:
    return {"name": name, "ready": False, "restartCount": 0,
            "state": {"terminated": {"reason": reason, "exitCode": exit_code}}}


def status_of(obj: dict[str, Any]) -> str:
    cell: str = cells("pods", obj)[2]
    return cell


# --- durations -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "text"), [
    (5, "5s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600 + 300, "3h5m"),
    (47 * 3600, "47h"), (2 * 86400 + 3 * 3600, "2d3h"), (90 * 86400, "90d"), (2 * 365 * 86400, "2y"),
    (3 * 365 * 86400 + 86400, "3y1d"), (9 * 365 * 86400, "9y"), (-1, "0s"), (-3, "<invalid>"),
])
def test_human_duration_matches_apimachinery(seconds: int, text: str) -> None:
    """Durations read like kubectl's AGE column."""
    assert human_duration(timedelta(seconds=seconds)) == text


# --- table shape -----------------------------------------------------------------------------------------

def test_table_envelope_and_list_metadata() -> None:
    """The result is a meta.k8s.io/v1 Table carrying the list's resourceVersion and continue token."""
    table = to_table("", "pods", [], now=NOW, list_metadata={"resourceVersion": "42", "continue": "abc"})
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert table["rows"] == []


def test_column_definitions_have_all_fields() -> None:
    """Each column has name, type, format, description and priority; Name is format "name"."""
    definitions = to_table("", "pods", [], now=NOW)["columnDefinitions"]
    assert all(set(d) == {"name", "type", "format", "description", "priority"} for d in definitions)
    assert definitions[0]["format"] == "name"


def test_default_include_object_is_partial_metadata() -> None:
    """Rows carry PartialObjectMetadata unless asked otherwise."""
    row = to_table("", "pods", [pod()], now=NOW)["rows"][0]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": pod()["metadata"]}


def test_include_object_none_and_object() -> None:
    """includeObject=None omits the object; Object embeds it whole."""
    assert "object" not in to_table("", "pods", [pod()], include_object="None", now=NOW)["rows"][0]
    assert to_table("", "pods", [pod()], include_object="Object", now=NOW)["rows"][0]["object"] == pod()


def test_unknown_include_object_is_rejected() -> None:
    """An includeObject value outside None/Metadata/Object is an error."""
    with pytest.raises(ValueError, match="includeObject"):
        to_table("", "pods", [], include_object="Everything", now=NOW)


def test_table_is_json_serializable() -> None:
    """Every cell is a string or an integer, so the table encodes as JSON."""
    table = to_table("", "pods", [pod(statuses=[running(restarts=2)])], now=NOW)
    assert json.loads(json.dumps(table)) == table
    assert all(isinstance(c, str | int) for c in table["rows"][0]["cells"])


# --- pods ------------------------------------------------------------------------------------------------

def test_pod_columns() -> None:
    """Pods print Name, Ready, Status, Restarts, Age, then the wide columns."""
    assert columns("pods") == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node",
                               "Readiness Gates"]
    priorities = [c["priority"] for c in to_table("", "pods", [], now=NOW)["columnDefinitions"]]
    assert priorities == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_running_pod_row() -> None:
    """A running ready pod prints 1/1 Running with its age and wide cells."""
    obj = pod(statuses=[running()])
    obj["spec"]["nodeName"] = "vnode-1"
    obj["status"]["podIPs"] = [{"ip": "10.0.0.7"}]
    assert cells("pods", obj) == ["build", "1/1", "Running", "0", "5m",
                                  "10.0.0.7", "vnode-1", "<none>", "<none>"]


def test_pending_pod_without_statuses() -> None:
    """A pod not yet started shows its phase."""
    assert status_of(pod("Pending")) == "Pending"


def test_container_creating() -> None:
    """A waiting container's reason becomes the pod status."""
    assert status_of(pod("Pending", statuses=[waiting("ContainerCreating")])) == "ContainerCreating"


def test_crash_loop_back_off() -> None:
    """CrashLoopBackOff is shown from the waiting reason."""
    assert status_of(pod(statuses=[waiting("CrashLoopBackOff")])) == "CrashLoopBackOff"


def test_completed_pod() -> None:
    """A container terminated with reason Completed prints Completed."""
    assert status_of(pod("Succeeded", statuses=[terminated("Completed", 0)])) == "Completed"


def test_error_pod() -> None:
    """A container terminated with reason Error prints Error."""
    assert status_of(pod("Failed", statuses=[terminated("Error", 1)])) == "Error"


def test_terminated_without_reason_shows_exit_code_or_signal() -> None:
    """Without a reason the exit code, or the signal, is shown."""
    assert status_of(pod("Failed", statuses=[terminated("", 137)])) == "ExitCode:137"
    obj = pod("Failed", statuses=[terminated("", 137)])
    obj["status"]["containerStatuses"][0]["state"]["terminated"]["signal"] = 9
    assert status_of(obj) == "Signal:9"


def test_init_container_progress() -> None:
    """A running init container prints Init:<done>/<total>."""
    obj = pod("Pending", statuses=[waiting("PodInitializing")], init=[running("setup", ready=False)])
    assert status_of(obj) == "Init:0/1"


def test_init_container_failure_reasons() -> None:
    """A failed or crash-looping init container prints Init:<reason>."""
    assert status_of(pod("Pending", init=[terminated("Error", 1, name="setup")])) == "Init:Error"
    crashing = pod("Pending", init=[waiting("CrashLoopBackOff", name="setup")])
    assert status_of(crashing) == "Init:CrashLoopBackOff"


def test_completed_with_running_container_is_not_ready_without_ready_condition() -> None:
    """Completed plus a running container reads NotReady unless the pod is Ready."""
    statuses = [running("a"), terminated("Completed", 0, name="b")]
    assert status_of(pod(statuses=statuses)) == "NotReady"
    assert status_of(pod(statuses=statuses, conditions=[{"type": "Ready", "status": "True"}])) == "Running"


def test_terminating_pod() -> None:
    """A deletion timestamp on a non-terminal pod prints Terminating."""
    assert status_of(pod(statuses=[running()], deletionTimestamp=ago(seconds=3))) == "Terminating"


def test_node_lost_pod_is_unknown() -> None:
    """A deleting pod whose reason is NodeLost prints Unknown."""
    lost = pod(statuses=[running()], deletionTimestamp=ago(seconds=3), reason="NodeLost")
    assert status_of(lost) == "Unknown"


def test_status_reason_overrides_phase() -> None:
    """status.reason (e.g. Evicted) replaces the phase."""
    assert status_of(pod("Failed", reason="Evicted")) == "Evicted"


def test_restarts_show_time_since_last_restart() -> None:
    """Restarts print the count and how long ago the last container exit was."""
    status = running(restarts=3)
    status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}}
    assert cells("pods", pod(statuses=[status]))[3] == "3 (5m ago)"


def test_ready_counts_only_ready_running_containers() -> None:
    """Ready is ready-and-running containers over all containers."""
    assert cells("pods", pod(statuses=[running("a"), running("b", ready=False)]))[1] == "1/2"


def test_sidecar_init_container_counts_as_container() -> None:
    """An init container with restartPolicy Always counts towards Ready once started."""
    obj = pod(statuses=[running()], init=[{**running("proxy"), "started": True}],
              conditions=[{"type": "Initialized", "status": "True"}])
    obj["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    assert cells("pods", obj)[1:3] == ["2/2", "Running"]


def test_succeeded_pod_row_has_completed_condition() -> None:
    """Terminal pods carry a Completed row condition."""
    row = to_table("", "pods", [pod("Succeeded", statuses=[terminated("Completed", 0)])], now=NOW)["rows"][0]
    assert row["conditions"][0]["type"] == "Completed"


def test_readiness_gates_count_true_conditions() -> None:
    """Readiness Gates prints satisfied over declared gates."""
    obj = pod(statuses=[running()], conditions=[{"type": "example.com/lb", "status": "True"}])
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"},
                                     {"conditionType": "example.com/dns"}]
    assert cells("pods", obj)[8] == "1/2"


def test_missing_creation_timestamp_is_unknown_age() -> None:
    """An object without creationTimestamp has age <unknown>."""
    obj = pod()
    del obj["metadata"]["creationTimestamp"]
    assert cells("pods", obj)[4] == "<unknown>"


# --- nodes -----------------------------------------------------------------------------------------------

def node(ready: str | None = "True", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "vnode-1", "creationTimestamp": ago(days=2, hours=3),
                     "labels": {"node-role.kubernetes.io/agent": "", "kubernetes.io/role": "ci"}},
        "spec": spec,
        "status": {"conditions": [] if ready is None else [{"type": "Ready", "status": ready}],
                   "addresses": [{"type": "InternalIP", "address": "10.1.0.2"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0-vnode", "osImage": "ECI", "kernelVersion": "5.10",
                                "containerRuntimeVersion": "eci://1.0"}},
    }


def test_node_row() -> None:
    """A ready node prints status, roles from labels, age, version and the wide cells."""
    assert columns("nodes") == ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP",
                                "OS-Image", "Kernel-Version", "Container-Runtime"]
    assert cells("nodes", node()) == ["vnode-1", "Ready", "agent,ci", "2d3h", "v1.33.0-vnode",
                                      "10.1.0.2", "<none>", "ECI", "5.10", "eci://1.0"]


@pytest.mark.parametrize(("ready", "status"),
                         [("False", "NotReady"), ("Unknown", "NotReady"), (None, "Unknown")])
def test_node_status(ready: str | None, status: str) -> None:
    """Ready other than True reads NotReady; no Ready condition reads Unknown."""
    assert cells("nodes", node(ready))[1] == status


def test_cordoned_node() -> None:
    """An unschedulable node adds SchedulingDisabled."""
    assert cells("nodes", node(unschedulable=True))[1] == "Ready,SchedulingDisabled"


def test_node_without_roles() -> None:
    """A node without role labels prints <none>."""
    obj = node()
    obj["metadata"]["labels"] = {}
    assert cells("nodes", obj)[2] == "<none>"


# --- events and other kinds ------------------------------------------------------------------------------

EVENT: dict[str, Any] = {
    "metadata": {"name": "build.1", "namespace": "ci", "creationTimestamp": ago(minutes=3)},
    "involvedObject": {"kind": "Pod", "name": "build", "fieldPath": "spec.containers{main}"},
    "reason": "Pulled", "type": "Normal", "message": "Pulled image \n", "count": 2,
    "firstTimestamp": ago(minutes=3), "lastTimestamp": ago(seconds=30), "source": {"component": "vnode"},
}


def test_event_row() -> None:
    """Events print last seen, type, reason, kind/name and message, plus the wide cells."""
    assert columns("events") == ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message",
                                 "First Seen", "Count", "Name"]
    assert cells("events", EVENT) == ["30s", "Normal", "Pulled", "pod/build", "spec.containers{main}",
                                      "vnode", "Pulled image", "3m", 2, "build.1"]


def test_events_k8s_io_shape_prints_the_same() -> None:
    """An events.k8s.io object (regarding, note, eventTime) prints through the same printer."""
    event = {"metadata": {"name": "e"}, "regarding": {"kind": "Node", "name": "vnode-1"}, "note": "up",
             "reason": "Ready", "type": "Normal", "eventTime": "2025-01-10T11:59:00.000000Z",
             "reportingController": "vnode"}
    assert cells("events", event, "events.k8s.io") == ["60s", "Normal", "Ready", "node/vnode-1", "",
                                                       "vnode", "up", "60s", 1, "e"]


def test_namespace_and_lease_rows() -> None:
    """Namespaces print their phase; leases their holder."""
    assert cells("namespaces", {"metadata": {"name": "ci", "creationTimestamp": ago(days=90)},
                                "status": {"phase": "Active"}}) == ["ci", "Active", "90d"]
    lease = {"metadata": {"name": "vnode-1", "creationTimestamp": ago(hours=1)},
             "spec": {"holderIdentity": "vnode-1"}}
    assert cells("leases", lease, "coordination.k8s.io") == ["vnode-1", "vnode-1", "60m"]


@pytest.mark.parametrize(("conditions", "certificate", "text"), [
    ([], "", "Pending"),
    ([{"type": "Approved"}], "", "Approved"),
    ([{"type": "Approved"}], "LS0t", "Approved,Issued"),
    ([{"type": "Denied"}], "", "Denied"),
    ([{"type": "Approved"}, {"type": "Failed"}], "", "Approved,Failed"),
])
def test_csr_condition(conditions: list[dict[str, str]], certificate: str, text: str) -> None:
    """The CSR Condition column summarises approval, failure and issuance."""
    csr = {"metadata": {"name": "csr-1", "creationTimestamp": ago(seconds=10)},
           "spec": {"signerName": "kubernetes.io/kubelet-serving", "username": "system:node:vnode-1",
                    "expirationSeconds": 86400},
           "status": {"conditions": conditions, "certificate": certificate}}
    row = cells("certificatesigningrequests", csr, "certificates.k8s.io")
    assert row == ["csr-1", "10s", "kubernetes.io/kubelet-serving", "system:node:vnode-1", "24h", text]


def test_configmap_secret_and_serviceaccount_counts() -> None:
    """ConfigMaps count data and binaryData; secrets print type and data count; SAs count secrets."""
    meta = {"name": "x", "creationTimestamp": ago(seconds=5)}
    configmap = {"metadata": meta, "data": {"a": "1"}, "binaryData": {"b": ""}}
    assert cells("configmaps", configmap) == ["x", 2, "5s"]
    secret = {"metadata": meta, "type": "Opaque", "data": {"a": "MQ=="}}
    assert cells("secrets", secret) == ["x", "Opaque", 1, "5s"]
    assert cells("serviceaccounts", {"metadata": meta, "secrets": [{"name": "t"}]}) == ["x", 1, "5s"]


def test_service_row() -> None:
    """Services print type, cluster IP, external IP, ports with node ports, age and selector."""
    svc = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=5)},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                              {"port": 53, "protocol": "UDP"}],
                    "selector": {"app": "web"}}}
    assert cells("services", svc) == ["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "5s",
                                      "app=web"]


def test_unknown_resource_uses_generic_columns() -> None:
    """Other resources print Name and the raw creation time as a date column."""
    widget = {"metadata": {"name": "w", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    table = to_table("apps", "widgets", [widget], now=NOW)
    definitions = [(c["name"], c["type"]) for c in table["columnDefinitions"]]
    assert definitions == [("Name", "string"), ("Created At", "date")]
    assert table["rows"][0]["cells"] == ["w", "2025-01-01T00:00:00Z"]
