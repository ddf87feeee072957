"""The kubelet's usage endpoints built from a provider's `UsageSnapshot`: `/stats/summary` and `/metrics/resource`.

Owns the shapes (stats/v1alpha1 Summary JSON, the resource-metrics Prometheus text) and the rules metrics-server
and the HPA need from them. It must not fetch anything or know about HTTP: route handlers call these functions
with a snapshot they already have.

Summary fields filled: node `nodeName`, `startTime`, `cpu` {time, usageCoreNanoSeconds, usageNanoCores when every
container knows it}, `memory` {time, workingSetBytes, usageBytes and rssBytes when every container knows them};
per pod `podRef`, `startTime`, `containers`, `cpu`, `memory` (sums of its containers), `network` {time, name,
rxBytes, txBytes, interfaces} when known; per container `name`, `startTime`, `cpu`, `memory` {availableBytes only
with a limit}, `rootfs`/`logs` {time, usedBytes} when known. Left out (nil pointers upstream): node
`systemContainers`, `network`, `fs`, `runtime`, `rlimit`, `swap`, `io`, node `memory.availableBytes`; pod `volume`,
`ephemeral-storage`, `process_stats`, `io`, `swap`; container `accelerators`, `userDefinedMetrics`, `swap`, `io`;
`pageFaults`, `majorPageFaults`, every `psi`, and the FsStats capacity/available/inode fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from vnode.clock import rfc3339
from vnode.providers.streams import ContainerUsage, PodUsage, UsageSnapshot

__all__ = ["CONTENT_TYPE_LATEST", "resource_metrics", "summary"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTERFACE = "eth0"  # the pod's default interface, which stats/v1alpha1 also embeds flat in NetworkStats
_CPU_KEYS = ("usageNanoCores", "usageCoreNanoSeconds")
_MEMORY_KEYS = ("availableBytes", "usageBytes", "workingSetBytes", "rssBytes")


def _at_least_one(value: int) -> int:
    # metrics-server silently drops the node point, or the whole pod, when any CPU or memory value is 0.
    return max(1, value)


def _cpu(container: ContainerUsage, time: str) -> dict[str, Any]:
    cpu: dict[str, Any] = {"time": time}
    if container.cpu_usage_nano_cores is not None:
        cpu["usageNanoCores"] = container.cpu_usage_nano_cores
    cpu["usageCoreNanoSeconds"] = _at_least_one(container.cpu_usage_core_nanoseconds)
    return cpu


def _memory(container: ContainerUsage, time: str) -> dict[str, Any]:
    working_set = _at_least_one(container.memory_working_set_bytes)
    memory: dict[str, Any] = {"time": time}
    if container.memory_limit_bytes is not None:
        # availableBytes = limit - working set; upstream omits it for unlimited containers. Unsigned: never below 0.
        memory["availableBytes"] = max(0, container.memory_limit_bytes - working_set)
    if container.memory_usage_bytes is not None:
        memory["usageBytes"] = container.memory_usage_bytes
    memory["workingSetBytes"] = working_set
    if container.memory_rss_bytes is not None:
        memory["rssBytes"] = container.memory_rss_bytes
    return memory


def _sum(parts: Sequence[dict[str, Any]], keys: Iterable[str], time: str) -> dict[str, Any]:
    """Sum each field that every part reports (a field some part lacks is unknown for the whole)."""
    out: dict[str, Any] = {"time": time}
    for key in keys:
        values = [part[key] for part in parts if key in part]
        if len(values) == len(parts):
            out[key] = sum(values)
    for key in ("usageCoreNanoSeconds", "workingSetBytes"):
        if key in out:
            out[key] = _at_least_one(out[key])
    return out


def _container_stats(container: ContainerUsage, time: str, only_cpu_and_memory: bool) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "name": container.name,
        "startTime": rfc3339(container.start_time),
        "cpu": _cpu(container, time),
        "memory": _memory(container, time),
    }
    if not only_cpu_and_memory:
        if container.rootfs_used_bytes is not None:
            stats["rootfs"] = {"time": time, "usedBytes": container.rootfs_used_bytes}
        if container.logs_used_bytes is not None:
            stats["logs"] = {"time": time, "usedBytes": container.logs_used_bytes}
    return stats


def _network(pod: PodUsage, time: str) -> dict[str, Any] | None:
    counters: dict[str, Any] = {}
    if pod.network_rx_bytes is not None:
        counters["rxBytes"] = pod.network_rx_bytes
    if pod.network_tx_bytes is not None:
        counters["txBytes"] = pod.network_tx_bytes
    if not counters:
        return None
    interface = {"name": _INTERFACE, **counters}
    return {"time": time, **interface, "interfaces": [interface]}


def _pod_stats(pod: PodUsage, time: str, only_cpu_and_memory: bool) -> dict[str, Any]:
    containers = [_container_stats(c, time, only_cpu_and_memory) for c in pod.containers]
    stats: dict[str, Any] = {
        "podRef": {"name": pod.ref.name, "namespace": pod.ref.namespace, "uid": pod.ref.uid},
        "startTime": rfc3339(pod.start_time),
        "containers": containers,
        "cpu": _sum([c["cpu"] for c in containers], _CPU_KEYS, time),
        "memory": _sum([c["memory"] for c in containers], _MEMORY_KEYS, time),
    }
    network = None if only_cpu_and_memory else _network(pod, time)
    if network is not None:
        stats["network"] = network
    return stats


def summary(snapshot: UsageSnapshot, *, node_name: str, node_start_time: datetime,
            only_cpu_and_memory: bool = False) -> dict[str, Any]:
    """The stats/v1alpha1 Summary for `GET /stats/summary` (`?only_cpu_and_memory=true` drops fs and network)."""
    time = rfc3339(snapshot.time)
    pods = [_pod_stats(pod, time, only_cpu_and_memory) for pod in snapshot.pods]
    node: dict[str, Any] = {
        "nodeName": node_name,
        "startTime": rfc3339(node_start_time),
        "cpu": _sum([p["cpu"] for p in pods], _CPU_KEYS, time),
        # The node has no memory limit of its own: availableBytes stays out rather than summing pod limits.
        "memory": _sum([p["memory"] for p in pods], _MEMORY_KEYS[1:], time),
    }
    return {"node": node, "pods": pods}


def _sample_time(moment: datetime) -> float:
    """Seconds for prometheus_client, which prints int(t * 1000) ms: the half-millisecond keeps float error from
    truncating a whole millisecond to the one before."""
    millis = (moment - _EPOCH) // timedelta(milliseconds=1)
    return (millis + 0.5) / 1000


class _ResourceCollector:
    """The series of the kubelet's resource-metrics collector; families without samples are left out, as the Go
    registry does."""

    def __init__(self, snapshot: UsageSnapshot | None, error: bool) -> None:
        self._snapshot = None if error else snapshot
        self._error = error

    def collect(self) -> Iterable[Metric]:
        families: list[Metric] = []
        if self._snapshot is not None:
            families.extend(self._usage(self._snapshot))
        failed = GaugeMetricFamily("resource_scrape_error",
                                   "1 if there was an error while getting container metrics, 0 otherwise")
        failed.add_metric([], 1.0 if self._error else 0.0)
        families.append(failed)
        return [family for family in families if family.samples]

    @staticmethod
    def _usage(snapshot: UsageSnapshot) -> list[Metric]:
        at = _sample_time(snapshot.time)
        container_labels = ["container", "namespace", "pod"]
        pod_labels = ["namespace", "pod"]
        container_cpu = CounterMetricFamily("container_cpu_usage_seconds_total",
                                            "Cumulative cpu time consumed by the container in core-seconds",
                                            labels=container_labels)
        container_memory = GaugeMetricFamily("container_memory_working_set_bytes",
                                             "Current working set of the container in bytes", labels=container_labels)
        container_start = GaugeMetricFamily("container_start_time_seconds",
                                            "Start time of the container since unix epoch in seconds",
                                            labels=container_labels)
        pod_cpu = CounterMetricFamily("pod_cpu_usage_seconds_total",
                                      "Cumulative cpu time consumed by the pod in core-seconds", labels=pod_labels)
        pod_memory = GaugeMetricFamily("pod_memory_working_set_bytes", "Current working set of the pod in bytes",
                                       labels=pod_labels)
        node_cpu_ns = node_memory = 0
        for pod in snapshot.pods:
            pod_cpu_ns = pod_memory_bytes = 0
            for container in pod.containers:
                labels = [container.name, pod.ref.namespace, pod.ref.name]
                cpu_ns = _at_least_one(container.cpu_usage_core_nanoseconds)
                memory = _at_least_one(container.memory_working_set_bytes)
                pod_cpu_ns += cpu_ns
                pod_memory_bytes += memory
                container_cpu.add_metric(labels, cpu_ns / 1e9, timestamp=at)
                container_memory.add_metric(labels, float(memory), timestamp=at)
                # Whole seconds, as /stats/summary carries it; no sample timestamp (upstream sends none), and a
                # start at or before the epoch is skipped as upstream does.
                started = (container.start_time - _EPOCH) // timedelta(seconds=1)
                if started > 0:
                    container_start.add_metric(labels, float(started))
            pod_cpu_ns, pod_memory_bytes = _at_least_one(pod_cpu_ns), _at_least_one(pod_memory_bytes)
            pod_cpu.add_metric([pod.ref.namespace, pod.ref.name], pod_cpu_ns / 1e9, timestamp=at)
            pod_memory.add_metric([pod.ref.namespace, pod.ref.name], float(pod_memory_bytes), timestamp=at)
            node_cpu_ns += pod_cpu_ns
            node_memory += pod_memory_bytes
        node_cpu = CounterMetricFamily("node_cpu_usage_seconds_total",
                                       "Cumulative cpu time consumed by the node in core-seconds")
        node_cpu.add_metric([], _at_least_one(node_cpu_ns) / 1e9, timestamp=at)
        node_mem = GaugeMetricFamily("node_memory_working_set_bytes", "Current working set of the node in bytes")
        node_mem.add_metric([], float(_at_least_one(node_memory)), timestamp=at)
        # Name order, as the Go registry writes families.
        return [container_cpu, container_memory, container_start, node_cpu, node_mem, pod_cpu, pod_memory]


def resource_metrics(snapshot: UsageSnapshot | None, *, error: bool) -> bytes:
    """The Prometheus text for `GET /metrics/resource` (serve it as `CONTENT_TYPE_LATEST`).

    Usage samples carry the snapshot time as a millisecond timestamp; `container_start_time_seconds` carries none.
    When the provider failed (`error`, snapshot None) only `resource_scrape_error 1` is written, as the kubelet does
    when its summary provider fails; the deprecated `scrape_error` twin and the swap series are not written.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ResourceCollector(snapshot, error))
    return generate_latest(registry)
