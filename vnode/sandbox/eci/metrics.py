"""DescribeContainerGroupMetric and DescribeMultiContainerGroupMetric: usage records of running container groups.

ECI samples a group every `Period` seconds (15, 30, 60 or 600; records on that grid of the Unix epoch) and keeps 30
days of samples; a record exists only for instants the group was Running. The numbers come from a `Sampler`; the
one here (`SimSampler`) derives them from the group's spec and its runtime's states: each running container uses a
steady share of its vCPUs (its own, else an even split of the group's), so `UsageCoreNanoSeconds` grows with the
time it has run, and a share of its memory as working set. A runtime that runs real containers (docker) may later
supply measured numbers through a sampler of its own; the runtime contract has no usage method yet. This module
must not know about HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vnode.clock import Clock, parse_rfc3339, rfc3339
from vnode.errors import NotFound
from vnode.sandbox.eci import params as p
from vnode.sandbox.eci.actions import Handler
from vnode.sandbox.eci.errors import invalid, missing
from vnode.sandbox.eci.model import ContainerGroup
from vnode.sandbox.eci.runtime import GroupRuntime
from vnode.sandbox.eci.store import GroupStore

GIB = 1024**3
_PAGE = 4096
_PERIODS = (15, 30, 60, 600)
_DEFAULT_WINDOW = timedelta(minutes=5)  # no StartTime/EndTime: the last 5 minutes at a 15 s period
_RETAINED = timedelta(days=30)
_MAX_RECORDS = 50  # ECI returns at most 50 records per call
_ROOTFS_BYTES = 30 * GIB  # the free temporary storage every group gets
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ContainerSample:
    name: str
    cpu_core_nanoseconds: int  # cumulative CPU time of the current run
    cpu_nano_cores: int  # recent rate, cores × 1e9
    cpu_limit_millis: int  # vCPUs × 1000; 0 when the container sets none
    working_set_bytes: int
    rss_bytes: int
    cache_bytes: int
    memory_limit_bytes: int  # 0 when the container sets none


@dataclass(frozen=True)
class GroupSample:
    at: datetime
    cpu_limit_millis: int
    memory_limit_bytes: int
    containers: tuple[ContainerSample, ...]
    rx_bytes: int
    tx_bytes: int


Sampler = Callable[[ContainerGroup, datetime], GroupSample | None]  # None: the group was not Running then


def _pages(size: float) -> int:
    return int(size) // _PAGE * _PAGE


class SimSampler:
    """Synthetic, deterministic usage from the group's spec and `runtime`'s states at the instant asked."""

    def __init__(self, runtime: GroupRuntime, *, cpu_share: float, memory_share: float) -> None:
        self._runtime = runtime
        self._cpu_share = cpu_share
        self._memory_share = memory_share

    def __call__(self, group: ContainerGroup, at: datetime) -> GroupSample | None:
        try:
            if self._runtime.group_status(group, at) != "Running":
                return None
            containers = []
            longest = 0.0
            for spec in group.containers:
                state = self._runtime.container_state(group, spec.name, at)
                if state.state != "Running" or state.started is None:
                    continue
                seconds = max(0.0, (at - state.started).total_seconds())
                longest = max(longest, seconds)
                cores = self._cpu_share * (spec.cpu or group.cpu / len(group.containers))
                memory = (spec.memory or group.memory / len(group.containers)) * GIB
                working_set = _pages(self._memory_share * memory)
                containers.append(ContainerSample(
                    name=spec.name, cpu_core_nanoseconds=int(cores * 1e9 * seconds), cpu_nano_cores=int(cores * 1e9),
                    cpu_limit_millis=int(spec.cpu * 1000), working_set_bytes=working_set,
                    rss_bytes=_pages(working_set * 0.75), cache_bytes=_pages(working_set * 0.25),
                    memory_limit_bytes=int(spec.memory * GIB)))
        except NotFound:  # the runtime no longer knows the group or a container of it
            return None
        # Steady traffic while running: 2 KiB/s in, 1 KiB/s out.
        return GroupSample(at=at, cpu_limit_millis=int(group.cpu * 1000), memory_limit_bytes=int(group.memory * GIB),
                           containers=tuple(containers), rx_bytes=int(2048 * longest), tx_bytes=int(1024 * longest))


def _cpu(nanoseconds: int, nano_cores: int, limit: int) -> dict[str, Any]:
    return {"UsageCoreNanoSeconds": nanoseconds, "UsageNanoCores": nano_cores, "Limit": limit, "Load": 0}


def _memory(working_set: int, rss: int, cache: int, limit: int) -> dict[str, Any]:
    # AvailableBytes is limit − working set, 0 without a limit (the docs' examples add up to 4 GiB exactly).
    return {"WorkingSet": working_set, "Rss": rss, "Cache": cache, "UsageBytes": working_set + cache,
            "AvailableBytes": max(0, limit - working_set) if limit else 0}


def record_view(sample: GroupSample) -> dict[str, Any]:
    """One item of `Records`, in ECI's key spelling (eci.md §1)."""
    parts = sample.containers
    working_set = sum(c.working_set_bytes for c in parts)
    rootfs_used = 512 * 1024**2 + working_set // 8
    return {
        "Timestamp": rfc3339(sample.at),
        "CPU": _cpu(sum(c.cpu_core_nanoseconds for c in parts), sum(c.cpu_nano_cores for c in parts),
                    sample.cpu_limit_millis),
        "Memory": _memory(working_set, sum(c.rss_bytes for c in parts), sum(c.cache_bytes for c in parts),
                          sample.memory_limit_bytes),
        "Network": {"Interfaces": [{"Name": "eth0", "RxBytes": sample.rx_bytes, "TxBytes": sample.tx_bytes,
                                    "RxPackets": sample.rx_bytes // 1024, "TxPackets": sample.tx_bytes // 1024,
                                    "RxErrors": 0, "TxErrors": 0, "RxDrops": 0, "TxDrops": 0}]},
        "Disk": [],
        "Filesystem": [{"FsName": "/dev/root", "Category": "System", "Capacity": _ROOTFS_BYTES, "Usage": rootfs_used,
                        "Available": _ROOTFS_BYTES - rootfs_used}],
        "Containers": [{"Name": c.name, "CPU": _cpu(c.cpu_core_nanoseconds, c.cpu_nano_cores, c.cpu_limit_millis),
                        "Memory": _memory(c.working_set_bytes, c.rss_bytes, c.cache_bytes, c.memory_limit_bytes)}
                       for c in parts],
    }


class EciMetrics:
    """The two metric actions over `store`, sampling with `sampler`."""

    def __init__(self, store: GroupStore, clock: Clock, sampler: Sampler) -> None:
        self._store = store
        self._clock = clock
        self._sampler = sampler
        self.handlers: dict[str, Handler] = {
            "DescribeContainerGroupMetric": self.describe_container_group_metric,
            "DescribeMultiContainerGroupMetric": self.describe_multi_container_group_metric,
        }

    def records(self, group: ContainerGroup, start: datetime, end: datetime, period: int) -> list[dict[str, Any]]:
        """The group's records on the `period` grid within [start, end], oldest first, the latest 50 at most."""
        step = timedelta(seconds=period)
        first = max(start, group.created)
        # The grid is whole multiples of `period` since the Unix epoch: the newest point at or before `end`.
        at = end - timedelta(seconds=(end - _EPOCH).total_seconds() % period)
        found: list[dict[str, Any]] = []
        while at >= first and len(found) < _MAX_RECORDS:
            sample = self._sampler(group, at)
            if sample is not None:
                found.append(record_view(sample))
            at -= step
        return found[::-1]

    def _window(self, params: p.Params) -> tuple[datetime, datetime, int]:
        now = self._clock.now()
        if not params.get("StartTime") and not params.get("EndTime"):
            return now - _DEFAULT_WINDOW, now, 15  # the docs: Period is then ignored
        end = min(_moment(params, "EndTime") or now, now)
        start = _moment(params, "StartTime") or end - _DEFAULT_WINDOW
        period = p.integer(params, "Period", 60, low=1, high=600)
        if period not in _PERIODS:
            raise invalid("Period", "one of 15, 30, 60, 600")
        if start < now - _RETAINED:
            raise invalid("StartTime", "must be within the last 30 days")
        if start > end:
            raise invalid("StartTime", "must not be after EndTime")
        return start, end, period

    def describe_container_group_metric(self, params: p.Params) -> dict[str, Any]:
        group = self._store.get(p.required(params, "ContainerGroupId"))
        start, end, period = self._window(params)
        return {"ContainerGroupId": group.id, "Records": self.records(group, start, end, period)}

    def describe_multi_container_group_metric(self, params: p.Params) -> dict[str, Any]:
        ids = p.id_list(params, "ContainerGroupIds")  # at most 20 (the API reference)
        if ids is None:
            raise missing("ContainerGroupIds")
        if params.get("MetricType") not in (None, "", "summary"):
            raise invalid("MetricType", "only summary is supported")
        now = self._clock.now()
        # Each group's latest record of the last 5 minutes (15 s grid); unknown ids are left out.
        return {"MonitorDatas": [{"ContainerGroupId": group.id,
                                  "Records": self.records(group, now - _DEFAULT_WINDOW, now, 15)[-1:]}
                                 for group in self._store.select(ids=ids)]}


def _moment(params: p.Params, name: str) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        moment = parse_rfc3339(text)
    except ValueError as exc:
        raise invalid(name, "an RFC 3339 time such as 2019-03-12T01:00:00.000Z") from exc
    if moment.tzinfo is None:
        raise invalid(name, "an RFC 3339 time with a zone (Z or ±hh:mm)")
    return moment
