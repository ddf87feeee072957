"""A small scheduler: binds pending pods to Ready nodes, like kube-scheduler's default filters.

Filters: node Ready and schedulable, `nodeSelector`, required node affinity, NoSchedule/NoExecute taints against
tolerations, and resource requests (cpu, memory, extended resources, pod count) against allocatable. Scores by
least allocated cpu. An unschedulable pod gets `PodScheduled=False/Unschedulable` and a FailedScheduling event,
and is retried whenever a node or pod changes.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import defaultdict
from fractions import Fraction

from vnode.clock import Clock, rfc3339
from vnode.sandbox import selectors, status
from vnode.sandbox.eventlog import EventLog
from vnode.sandbox.registry import Registry
from vnode.sandbox.store import Obj
from vnode.util.quantity import parse_quantity

log = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")


def _requests(pod: Obj) -> dict[str, Fraction]:
    """Effective requests: the sum over app containers, or the largest init container's, whichever is larger."""
    total: dict[str, Fraction] = defaultdict(Fraction)
    spec = pod.get("spec") or {}
    for container in spec.get("containers", []):
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] += parse_quantity(value)
    for container in spec.get("initContainers", []):
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            total[name] = max(total[name], parse_quantity(value))
    return total


def _tolerates(taint: Obj, tolerations: list[Obj]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        operator = toleration.get("operator", "Equal")
        if not toleration.get("key") and operator == "Exists":
            return True
        if toleration.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def is_ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def unfit_reason(pod: Obj, node: Obj, used: dict[str, Fraction], pod_count: int) -> str | None:
    """Why `pod` cannot run on `node` (a kube-scheduler style phrase), or None if it fits."""
    spec = pod.get("spec") or {}
    if not is_ready(node) or (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable or not ready"
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return "node(s) didn't match Pod's node affinity/selector"
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    if required.get("nodeSelectorTerms") and not selectors.node_selector_matches(required["nodeSelectorTerms"], node):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(taint, spec.get("tolerations") or []):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    if "pods" in allocatable and pod_count + 1 > parse_quantity(allocatable["pods"]):
        return "Too many pods"
    for name, wanted in _requests(pod).items():
        available = parse_quantity(allocatable[name]) if name in allocatable else Fraction(0)
        if wanted and used.get(name, Fraction(0)) + wanted > available:
            return f"Insufficient {name}"
    return None


class Scheduler:
    def __init__(self, registry: Registry, clock: Clock, events: EventLog) -> None:
        self._registry = registry
        self._clock = clock
        self._events = events
        self._wake = asyncio.Event()

    def _pending(self) -> list[Obj]:
        return [p for p in self._registry.store.iterate("pods")
                if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
                and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
                and (p.get("status") or {}).get("phase") not in TERMINAL]

    def schedule_pending(self) -> int:
        """One pass over pending pods; returns how many were bound."""
        pending = self._pending()
        if not pending:
            return 0
        nodes = list(self._registry.store.iterate("nodes"))
        used: dict[str, dict[str, Fraction]] = {n["metadata"]["name"]: defaultdict(Fraction) for n in nodes}
        counts: dict[str, int] = defaultdict(int)
        for pod in self._registry.store.iterate("pods"):
            node_name = pod["spec"].get("nodeName")
            if node_name in used and (pod.get("status") or {}).get("phase") not in TERMINAL:
                counts[node_name] += 1
                for name, value in _requests(pod).items():
                    used[node_name][name] += value
        bound = 0
        for pod in pending:
            reasons: dict[str, int] = defaultdict(int)
            fits: list[Obj] = []
            for node in nodes:
                name = node["metadata"]["name"]
                reason = unfit_reason(pod, node, used[name], counts[name])
                if reason is None:
                    fits.append(node)
                else:
                    reasons[reason] += 1
            if fits:
                best = min(fits, key=lambda n: (self._cpu_share(n, used[n["metadata"]["name"]]),
                                                n["metadata"]["name"]))
                self._bind(pod, best["metadata"]["name"])
                name = best["metadata"]["name"]
                counts[name] += 1
                for resource, value in _requests(pod).items():
                    used[name][resource] += value
                bound += 1
            else:
                self._mark_unschedulable(pod, len(nodes), reasons)
        return bound

    @staticmethod
    def _cpu_share(node: Obj, used: dict[str, Fraction]) -> Fraction:
        cpu = ((node.get("status") or {}).get("allocatable") or {}).get("cpu")
        total = parse_quantity(cpu) if cpu else Fraction(0)
        return used.get("cpu", Fraction(0)) / total if total else Fraction(1)

    def _bind(self, pod: Obj, node_name: str) -> None:
        meta = pod["metadata"]
        try:
            self._registry.bind(meta["namespace"], meta["name"], {"target": {"kind": "Node", "name": node_name}})
        except status.ApiError as exc:
            log.info("binding %s/%s failed: %s", meta["namespace"], meta["name"], exc.message)
            return
        self._events.record(pod, "Normal", "Scheduled",
                            f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}",
                            component="default-scheduler")

    def _mark_unschedulable(self, pod: Obj, node_count: int, reasons: dict[str, int]) -> None:
        detail = " ".join(f"{count} {reason}." for reason, count in sorted(reasons.items()))
        message = f"0/{node_count} nodes are available: {detail}".rstrip() if node_count else \
            "no nodes available to schedule pods"
        conditions = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current and current.get("message") == message:
            return  # already says so; avoid rewriting the pod on every pass
        new = copy.deepcopy(pod)
        others = [c for c in conditions if c.get("type") != "PodScheduled"]
        new["status"]["conditions"] = [*others, {
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
            "lastProbeTime": None, "lastTransitionTime": rfc3339(self._clock.now())}]
        self._registry.store.replace("pods", new)
        self._events.record(pod, "Warning", "FailedScheduling", message, component="default-scheduler")

    async def run(self) -> None:
        """Schedule whenever pods or nodes change. Ends only by cancellation."""
        store = self._registry.store
        pods = store.watch("pods", namespace=None, matches=lambda p: True, since=store.resource_version)
        nodes = store.watch("nodes", namespace=None, matches=lambda n: True, since=store.resource_version)
        try:
            self.schedule_pending()
            while True:
                waits = [asyncio.ensure_future(pods.queue.get()), asyncio.ensure_future(nodes.queue.get())]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                    await asyncio.gather(*waits, return_exceptions=True)
                # Drain what else arrived so a burst of writes costs one pass.
                for queue in (pods.queue, nodes.queue):
                    while not queue.empty():
                        queue.get_nowait()
                self.schedule_pending()
        finally:
            store.unwatch("pods", pods)
            store.unwatch("nodes", nodes)
