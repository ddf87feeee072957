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
from vnode.sandbox.store import Obj, StoredEvent
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


def _is_pending(pod: Obj) -> bool:
    return (not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp")
            and pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
            and (pod.get("status") or {}).get("phase") not in TERMINAL)


class Scheduler:
    """Keeps the set of pending pods from watch events, so a cluster of bound pods costs nothing per write;
    pods that did not fit are retried when a node changes or a pod leaves a node."""

    def __init__(self, registry: Registry, clock: Clock, events: EventLog) -> None:
        self._registry = registry
        self._clock = clock
        self._events = events
        self._pending: set[tuple[str, str]] = set()
        self._unschedulable: set[tuple[str, str]] = set()

    def _observe_pod(self, event_type: str, pod: Obj) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if event_type != "DELETED" and _is_pending(pod):
            if key not in self._unschedulable:
                self._pending.add(key)
            return
        self._pending.discard(key)
        self._unschedulable.discard(key)
        # A pod leaving a node (deleted or finished) frees room for the ones that did not fit.
        if pod["spec"].get("nodeName") and (event_type == "DELETED" or (pod.get("status") or {}).get(
                "phase") in TERMINAL):
            self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        self._pending |= self._unschedulable
        self._unschedulable.clear()

    def schedule_pending(self) -> int:
        """One pass over the pods waiting for a node; returns how many were bound."""
        pending = [p for key in sorted(self._pending)
                   if (p := self._registry.store.get("pods", *key)) is not None and _is_pending(p)]
        self._pending.clear()
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
                name = best["metadata"]["name"]
                self._bind(pod, name)
                counts[name] += 1
                for resource, value in _requests(pod).items():
                    used[name][resource] += value
                bound += 1
            else:
                self._unschedulable.add((pod["metadata"]["namespace"], pod["metadata"]["name"]))
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
        pods = store.watch("pods", namespace=None, matches=lambda p: True, since=None)
        nodes = store.watch("nodes", namespace=None, matches=lambda n: True, since=store.resource_version)
        try:
            while True:
                waits = [asyncio.ensure_future(pods.queue.get()), asyncio.ensure_future(nodes.queue.get())]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for wait in waits:
                        wait.cancel()
                    results = await asyncio.gather(*waits, return_exceptions=True)
                # Take everything that arrived, so a burst of writes costs one pass.
                pod_events = [results[0], *_drain(pods.queue)]
                node_events = [results[1], *_drain(nodes.queue)]
                for event in pod_events:
                    if isinstance(event, StoredEvent):
                        self._observe_pod(event.type, event.object)
                if any(isinstance(event, StoredEvent) for event in node_events):
                    self._retry_unschedulable()
                if None in pod_events or None in node_events:
                    raise RuntimeError("scheduler fell behind its watches")
                self.schedule_pending()
        finally:
            store.unwatch("pods", pods)
            store.unwatch("nodes", nodes)


def _drain(queue: asyncio.Queue[StoredEvent | None]) -> list[StoredEvent | None]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
