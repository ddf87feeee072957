"""ECI metric records → the kubelet's usage figures (the shapes of the API reference's examples)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vnode.providers.base import PodRef
from vnode.providers.eci.usage import pod_usage

REF = PodRef("ci", "build-1", "uid-1")
STARTED = datetime(2021, 8, 25, 8, 0, tzinfo=UTC)


def record(timestamp: str, cpu_ns: int, *, available: int = 0, interfaces: int = 1) -> dict[str, Any]:
    return {
        "Timestamp": timestamp,
        "CPU": {"UsageCoreNanoSeconds": cpu_ns, "UsageNanoCores": 0, "Limit": 2000, "Load": 0},
        "Memory": {"UsageBytes": 11153408, "Rss": 1593344, "AvailableBytes": 4289445888, "WorkingSet": 5521408},
        "Network": {"Interfaces": [{"Name": f"eth{n}", "RxBytes": 100, "TxBytes": 50} for n in range(interfaces)]},
        "Containers": [{"Name": "nginx",
                        "CPU": {"UsageCoreNanoSeconds": cpu_ns, "UsageNanoCores": 250_000_000, "Limit": 0},
                        "Memory": {"UsageBytes": 9850880, "Rss": 1593344, "AvailableBytes": available,
                                   "WorkingSet": 4841472, "Cache": 7028736}}],
    }


def test_latest_record_wins() -> None:
    usage = pod_usage(REF, [record("2021-08-25T16:22:15.000+08:00", 2000),
                            record("2021-08-25T16:22:00.000+08:00", 1000)], STARTED)
    assert usage is not None
    assert usage.containers[0].cpu_usage_core_nanoseconds == 2000


def test_container_figures_map_to_the_kubelets() -> None:
    usage = pod_usage(REF, [record("2021-08-25T08:22:00Z", 38373298)], STARTED)
    assert usage is not None and usage.ref == REF and usage.start_time == STARTED
    container = usage.containers[0]
    assert (container.name, container.cpu_usage_nano_cores, container.memory_working_set_bytes,
            container.memory_usage_bytes, container.memory_rss_bytes) == ("nginx", 250_000_000, 4841472, 9850880,
                                                                          1593344)


def test_no_available_bytes_means_no_limit() -> None:
    usage = pod_usage(REF, [record("2021-08-25T08:22:00Z", 1)], STARTED)
    assert usage is not None and usage.containers[0].memory_limit_bytes is None


def test_limit_is_available_plus_working_set() -> None:
    usage = pod_usage(REF, [record("2021-08-25T08:22:00Z", 1, available=1024**3 - 4841472)], STARTED)
    assert usage is not None and usage.containers[0].memory_limit_bytes == 1024**3


def test_zero_counters_are_raised_to_one() -> None:
    # metrics-server drops a pod that reports 0 CPU or memory.
    usage = pod_usage(REF, [record("2021-08-25T08:22:00Z", 0)], STARTED)
    assert usage is not None and usage.containers[0].cpu_usage_core_nanoseconds == 1


def test_network_sums_every_interface() -> None:
    usage = pod_usage(REF, [record("2021-08-25T08:22:00Z", 1, interfaces=2)], STARTED)
    assert usage is not None and (usage.network_rx_bytes, usage.network_tx_bytes) == (200, 100)


def test_without_a_start_time_the_sample_time_stands_in() -> None:
    usage = pod_usage(REF, [record("2021-08-25T08:22:00Z", 1)], None)
    assert usage is not None and usage.start_time == datetime(2021, 8, 25, 8, 22, tzinfo=UTC)


def test_no_records_no_usage() -> None:
    assert pod_usage(REF, [], STARTED) is None
    assert pod_usage(REF, [{**record("2021-08-25T08:22:00Z", 1), "Containers": []}], STARTED) is None
