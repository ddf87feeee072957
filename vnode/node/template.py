"""What the virtual node looks like: its labels, taint, capacity, addresses, endpoints, nodeInfo and conditions.

Pure functions from settings and the provider's description to Node JSON fragments; writing them is `agent.py`'s
job. Condition reasons and messages follow the kubelet's, so `kubectl describe node` reads as usual.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vnode import KUBERNETES_VERSION, __version__
from vnode.clock import rfc3339
from vnode.config import NodeSettings
from vnode.providers.base import NodeDescription, NodeResources

Obj = dict[str, Any]
PROVIDER_LABEL = "vnode.io/provider"


def kubelet_version() -> str:
    return f"v{KUBERNETES_VERSION}-vnode-{__version__}"


def labels(settings: NodeSettings, description: NodeDescription) -> dict[str, str]:
    return {
        "type": "virtual-kubelet",
        "kubernetes.io/role": "agent",
        "kubernetes.io/hostname": settings.name,
        "kubernetes.io/os": description.operating_system,
        "kubernetes.io/arch": description.architecture,
        PROVIDER_LABEL: description.provider,
        # Load balancers must not send traffic through a node that has no kube-proxy.
        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
        **settings.labels,
    }


def taint(settings: NodeSettings, description: NodeDescription) -> Obj | None:
    if not settings.taint_enabled:
        return None
    return {"key": settings.taint_key, "value": settings.taint_value or description.provider,
            "effect": settings.taint_effect}


def merged_taints(existing: list[Obj], ours: Obj | None, key: str) -> list[Obj]:
    """Others' taints kept in place; ours (matched by key) replaced or removed."""
    kept = [t for t in existing if t.get("key") != key]
    return [*kept, ours] if ours is not None else kept


def addresses(settings: NodeSettings, internal_ip: str) -> list[Obj]:
    return [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": settings.name}]


def node_info(description: NodeDescription) -> dict[str, str]:
    return {
        "machineID": "", "systemUUID": "", "bootID": "",
        "kernelVersion": description.kernel_version or platform.release(),
        "osImage": description.os_image,
        "containerRuntimeVersion": description.container_runtime_version,
        "kubeletVersion": kubelet_version(),
        "kubeProxyVersion": "",
        "operatingSystem": description.operating_system,
        "architecture": description.architecture,
    }


@dataclass(frozen=True)
class Health:
    """The node's readiness as vnode sees it: `ready`, or not with a reason and message naming the cause."""

    ready: bool
    reason: str
    message: str


STARTING = Health(False, "KubeletNotReady", "vnode is starting: pods are being reconciled")
READY = Health(True, "KubeletReady", "kubelet is posting ready status")

_PRESSURE = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def conditions(health: Health, now: datetime, previous: dict[str, Obj]) -> list[Obj]:
    """All node conditions with lastHeartbeatTime now; lastTransitionTime moves only when the status changes."""
    stamp = rfc3339(now)
    wanted = [("Ready", "True" if health.ready else "False", health.reason, health.message), *(
        (kind, "False", reason, message) for kind, reason, message in _PRESSURE),
        ("NetworkUnavailable", "False", "RouteCreated", "vnode pods use the backend's network")]
    out = []
    for kind, status, reason, message in wanted:
        before = previous.get(kind)
        transition = before["lastTransitionTime"] if before and before.get("status") == status else stamp
        out.append({"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": stamp, "lastTransitionTime": transition})
    return out


def status(*, health: Health, now: datetime, previous_conditions: dict[str, Obj], capacity: NodeResources,
           description: NodeDescription, settings: NodeSettings, internal_ip: str, kubelet_port: int,
           declared_features: tuple[str, ...] = ()) -> Obj:
    quantities = capacity.as_quantities()
    out: Obj = {
        "capacity": quantities,
        "allocatable": dict(quantities),
        "conditions": conditions(health, now, previous_conditions),
        "addresses": addresses(settings, internal_ip),
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": node_info(description),
    }
    if declared_features:
        # status.declaredFeatures (KEP-5328) is kept sorted and unique.
        out["declaredFeatures"] = sorted(set(declared_features))
    return out
