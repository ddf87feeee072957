"""Resource usage of the node's container groups, read from ECI's DescribeMultiContainerGroupMetric.

`usage_snapshot` asks for up to 20 groups per call (the API's limit on `ContainerGroupIds`) and turns each group's
latest record into a `PodUsage`: per container, cumulative CPU (`UsageCoreNanoSeconds`), the CPU rate
(`UsageNanoCores`, read as nano-cores: the kubelet's unit [unverified: the API reference calls it "usage in the
sampling window"]), memory working set, usage and RSS, and the memory limit (`AvailableBytes` is limit − working
set, 0 without a limit). Groups the answer leaves out, or that have no record yet, are skipped. It must not know
about pods beyond the `PodRef` each group id maps to.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vnode.clock import Clock, parse_rfc3339
from vnode.providers.base import PodRef
from vnode.providers.eci.client import EciClient
from vnode.providers.streams import ContainerUsage, PodUsage, UsageSnapshot

MAX_IDS_PER_CALL = 20  # DescribeMultiContainerGroupMetric: "You can specify up to 20 instance IDs at a time."


def _int(section: Mapping[str, Any], key: str) -> int | None:
    value = section.get(key)
    return None if value is None else int(value)


def _time(record: Mapping[str, Any]) -> datetime | None:
    text = record.get("Timestamp")
    if not text:
        return None
    try:
        return parse_rfc3339(str(text))
    except ValueError:
        return None


def container_usage(item: Mapping[str, Any], start_time: datetime) -> ContainerUsage:
    """One `Records[].Containers[]` entry."""
    cpu, memory = item.get("CPU") or {}, item.get("Memory") or {}
    working_set = _int(memory, "WorkingSet") or 0
    available = _int(memory, "AvailableBytes") or 0
    return ContainerUsage(
        name=str(item.get("Name", "")), start_time=start_time,
        # Never 0: metrics-server drops a pod with a zero value.
        cpu_usage_core_nanoseconds=max(1, _int(cpu, "UsageCoreNanoSeconds") or 0),
        memory_working_set_bytes=max(1, working_set),
        cpu_usage_nano_cores=_int(cpu, "UsageNanoCores") or None,
        memory_usage_bytes=_int(memory, "UsageBytes"), memory_rss_bytes=_int(memory, "Rss"),
        memory_limit_bytes=available + working_set if available else None)


def pod_usage(ref: PodRef, records: list[Mapping[str, Any]], start_time: datetime | None) -> PodUsage | None:
    """The pod's usage from its group's latest record (None without one, or without container figures)."""
    dated = [(at, record) for record in records if (at := _time(record)) is not None]
    if not dated:
        return None
    at, record = max(dated, key=lambda pair: pair[0])
    # ECI's records carry no start time: the caller's (the group's Running time), else the sample's own time.
    started = start_time or at
    containers = tuple(container_usage(item, started) for item in record.get("Containers") or ())
    if not containers:
        return None
    interfaces = (record.get("Network") or {}).get("Interfaces") or []
    return PodUsage(ref, started, containers,
                    network_rx_bytes=sum(_int(i, "RxBytes") or 0 for i in interfaces) if interfaces else None,
                    network_tx_bytes=sum(_int(i, "TxBytes") or 0 for i in interfaces) if interfaces else None)


async def usage_snapshot(client: EciClient, groups: Mapping[str, PodRef], clock: Clock, *,
                         start_times: Mapping[str, datetime] | None = None) -> UsageSnapshot:
    """Usage of `groups` (group id → pod), measured now; `start_times` (group id → when it began Running) gives the
    pods' and containers' start times, which ECI's metrics lack."""
    now = clock.now()
    ids = list(groups)
    chunks = [ids[i:i + MAX_IDS_PER_CALL] for i in range(0, len(ids), MAX_IDS_PER_CALL)]
    # Every call finishes (or the caller's cancellation cancels them all) before a failure is raised as is.
    answers = await asyncio.gather(*(client.call("DescribeMultiContainerGroupMetric", {
        "ContainerGroupIds": json.dumps(chunk), "MetricType": "summary"}, mutating=False) for chunk in chunks),
        return_exceptions=True)
    replies: list[dict[str, Any]] = []
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
        replies.append(answer)
    pods = []
    for reply in replies:
        for data in reply.get("MonitorDatas") or ():
            group_id = data.get("ContainerGroupId")
            ref = groups.get(group_id) if isinstance(group_id, str) else None
            if ref is None:
                continue
            usage = pod_usage(ref, list(data.get("Records") or ()), (start_times or {}).get(group_id))
            if usage is not None:
                pods.append(usage)
    return UsageSnapshot(time=now, pods=tuple(pods))
