"""How vnode names and labels the Docker containers of a pod, and finds them again (after a restart of vnode too).

Every container vnode creates carries labels naming the node, the pod and its role, so vnode adopts what is running
instead of recreating it, and removes what belongs to pods that are gone. Pure functions; no engine calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vnode.providers.base import PodRef

LABEL_NODE = "vnode.io/node"
LABEL_NAMESPACE = "vnode.io/namespace"
LABEL_POD = "vnode.io/pod"
LABEL_UID = "vnode.io/pod-uid"
LABEL_CONTAINER = "vnode.io/container"  # the pod spec's container name; "" for the sandbox
LABEL_ROLE = "vnode.io/role"
LABEL_ATTEMPT = "vnode.io/attempt"  # 0 for a container's first instance, +1 per restart (its restartCount)
LABEL_RESTART_POLICY = "vnode.io/restart-policy"  # on the sandbox: the pod's restartPolicy, for adopted pods
# On the sandbox: the pod's terminationGracePeriodSeconds (when set), for the probe kills of adopted pods.
LABEL_GRACE_PERIOD = "vnode.io/termination-grace-period-seconds"
# On an app container with probes: compact JSON of its livenessProbe, readinessProbe, startupProbe and named ports,
# so an adopted pod is probed as its spec says.
LABEL_PROBES = "vnode.io/probes"
# Also set, like the kubelet's dockershim did, so `docker ps` reads well.
LABEL_K8S_POD = "io.kubernetes.pod.name"
LABEL_K8S_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_K8S_CONTAINER = "io.kubernetes.container.name"

Role = Literal["sandbox", "init", "app"]
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class ContainerKey:
    """One Docker container of a pod, as its labels describe it."""

    ref: PodRef
    role: Role
    container: str  # "" for the sandbox
    attempt: int


def labels(node: str, key: ContainerKey) -> dict[str, str]:
    return {
        LABEL_NODE: node, LABEL_NAMESPACE: key.ref.namespace, LABEL_POD: key.ref.name, LABEL_UID: key.ref.uid,
        LABEL_CONTAINER: key.container, LABEL_ROLE: key.role, LABEL_ATTEMPT: str(key.attempt),
        LABEL_K8S_POD: key.ref.name, LABEL_K8S_NAMESPACE: key.ref.namespace,
        LABEL_K8S_CONTAINER: key.container or "POD",
    }


def container_name(node: str, key: ContainerKey) -> str:
    """Unique per node, pod UID, container and attempt (dockershim's k8s_<container>_<pod>_<ns>_<uid>_<attempt>)."""
    parts = ("vnode", node, key.container or "POD", key.ref.name, key.ref.namespace, key.ref.uid[:8],
             str(key.attempt))
    return "_".join(_UNSAFE.sub("-", part) for part in parts)


def node_filter(node: str) -> dict[str, list[str]]:
    """A `filters` argument for the engine's container list: everything of this node."""
    return {"label": [f"{LABEL_NODE}={node}"]}


def pod_filter(node: str, uid: str) -> dict[str, list[str]]:
    return {"label": [f"{LABEL_NODE}={node}", f"{LABEL_UID}={uid}"]}


def key_of(container_labels: Mapping[str, str]) -> ContainerKey | None:
    """The key a container's labels give, or None for a container vnode did not create."""
    try:
        ref = PodRef(container_labels[LABEL_NAMESPACE], container_labels[LABEL_POD], container_labels[LABEL_UID])
        role = container_labels[LABEL_ROLE]
        attempt = int(container_labels[LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None
    if role not in ("sandbox", "init", "app"):
        return None
    return ContainerKey(ref, role, container_labels.get(LABEL_CONTAINER, ""), attempt)  # type: ignore[arg-type]


def latest(summaries: Iterable[Mapping[str, Any]], container: str) -> list[Mapping[str, Any]]:
    """The engine's container summaries (`GET /containers/json`) for `container`, newest attempt first: [0] is the
    current instance, [1] the previous one (what `kubectl logs -p` reads)."""
    mine = [s for s in summaries if (s.get("Labels") or {}).get(LABEL_CONTAINER) == container
            and (s.get("Labels") or {}).get(LABEL_ROLE) != "sandbox"]
    return sorted(mine, key=lambda s: int((s.get("Labels") or {}).get(LABEL_ATTEMPT, "0")), reverse=True)
