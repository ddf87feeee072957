"""The node lifecycle controller: notices nodes whose kubelet went silent and taints them.

As kube-controller-manager does: a node whose Lease (kube-node-lease/<node>) and Ready heartbeat are both older
than the grace period gets every condition set to Unknown ("Kubelet stopped posting node status."), the
`node.kubernetes.io/unreachable` NoSchedule and NoExecute taints, and its pods marked not Ready. When the kubelet
posts Ready again the taints go. A node reporting Ready=False gets the `not-ready` taints instead.
Taint-based eviction after tolerationSeconds is not done.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta

from vnode.clock import Clock, parse_rfc3339, rfc3339
from vnode.sandbox.eventlog import EventLog
from vnode.sandbox.store import Obj, Store

log = logging.getLogger(__name__)
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


class NodeLifecycleController:
    def __init__(self, store: Store, clock: Clock, events: EventLog, *, grace_seconds: float,
                 period_seconds: float) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._grace = timedelta(seconds=grace_seconds)
        self._period = period_seconds

    def _last_heard(self, node: Obj) -> datetime:
        name = node["metadata"]["name"]
        times = [parse_rfc3339(node["metadata"]["creationTimestamp"])]
        lease = self._store.get("leases.coordination.k8s.io", "kube-node-lease", name)
        if lease and (lease.get("spec") or {}).get("renewTime"):
            times.append(parse_rfc3339(lease["spec"]["renewTime"]))
        for condition in (node.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "Ready" and condition.get("lastHeartbeatTime"):
                times.append(parse_rfc3339(condition["lastHeartbeatTime"]))
        return max(times)

    def check_nodes(self) -> None:
        """One monitoring pass over every node."""
        now = self._clock.now()
        for node in list(self._store.iterate("nodes")):
            ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), None)
            silent = now - self._last_heard(node) > self._grace
            if silent and (ready is None or ready.get("status") != "Unknown"):
                self._mark_unknown(node, now)
            elif not silent and ready is not None:
                wanted = {"True": None, "False": NOT_READY}.get(ready.get("status", ""), UNREACHABLE)
                self._set_taints(node, wanted, now)

    def _mark_unknown(self, node: Obj, now: datetime) -> None:
        new = copy.deepcopy(node)
        stamp = rfc3339(now)
        conditions = new.setdefault("status", {}).setdefault("conditions", [])
        for condition_type in _CONDITIONS:
            condition = next((c for c in conditions if c.get("type") == condition_type), None)
            if condition is None:
                condition = {"type": condition_type}
                conditions.append(condition)
            condition.update(status="Unknown", reason="NodeStatusUnknown",
                             message="Kubelet stopped posting node status.", lastTransitionTime=stamp)
            condition.setdefault("lastHeartbeatTime", stamp)
        new["spec"] = {**(new.get("spec") or {}), "taints": _with_taint(new, UNREACHABLE, stamp)}
        self._store.replace("nodes", new)
        self._events.record(node, "Normal", "NodeNotReady",
                            f"Node {node['metadata']['name']} status is now: NodeNotReady",
                            component="node-controller")
        self._mark_pods_not_ready(node["metadata"]["name"], stamp)

    def _set_taints(self, node: Obj, wanted: str | None, now: datetime) -> None:
        spec = node.get("spec") or {}
        current = spec.get("taints") or []
        ours = {t.get("key") for t in current if t.get("key") in (UNREACHABLE, NOT_READY)}
        if ours == ({wanted} if wanted else set()):
            return
        new = copy.deepcopy(node)
        new["spec"] = {**spec, "taints": _with_taint(new, wanted, rfc3339(now))}
        if not new["spec"]["taints"]:
            del new["spec"]["taints"]
        self._store.replace("nodes", new)

    def _mark_pods_not_ready(self, node_name: str, stamp: str) -> None:
        for pod in list(self._store.iterate("pods")):
            if pod["spec"].get("nodeName") != node_name:
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                continue
            new = copy.deepcopy(pod)
            for condition in new["status"]["conditions"]:
                if condition.get("type") == "Ready":
                    condition.update(status="False", lastTransitionTime=stamp)
            self._store.replace("pods", new)

    async def run(self) -> None:
        """Check every `period_seconds`. Ends only by cancellation."""
        while True:
            try:
                self.check_nodes()
            except Exception:  # a bad node object must not stop monitoring of the others
                log.exception("node lifecycle pass failed")
            await self._clock.sleep(self._period)


def _with_taint(node: Obj, key: str | None, stamp: str) -> list[Obj]:
    """The node's taints with our lifecycle taints replaced by `key` (NoSchedule and NoExecute), or removed."""
    kept = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("key") not in (UNREACHABLE, NOT_READY)]
    if key is None:
        return kept
    return [*kept, {"key": key, "effect": "NoSchedule", "timeAdded": stamp},
            {"key": key, "effect": "NoExecute", "timeAdded": stamp}]
