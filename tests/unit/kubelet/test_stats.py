"""/stats/summary and /metrics/resource built from a usage snapshot, checked against what metrics-server reads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from vnode.kubelet.stats import resource_metrics, summary
from vnode.providers.base import PodRef
from vnode.providers.streams import ContainerUsage, PodUsage, UsageSnapshot

NOW = datetime(2026, 7, 1, 0, 10, 0, 250_000, tzinfo=UTC)  # a quarter second past: times must drop it
NOW_MS = 1782864600250
NODE_START = datetime(2026, 7, 1, tzinfo=UTC)
POD_START = datetime(2026, 7, 1, 0, 1, tzinfo=UTC)
USAGE_NAMES = ("node_cpu_usage_seconds_total", "node_memory_working_set_bytes", "container_cpu_usage_seconds_total",
               "container_memory_working_set_bytes")


def container(name: str = "web", **fields: Any) -> ContainerUsage:
    values: dict[str, Any] = {"cpu_usage_core_nanoseconds": 2_700_000_000, "memory_working_set_bytes": 52_000_000}
    values.update(fields)
    return ContainerUsage(name=name, start_time=POD_START + timedelta(seconds=5, microseconds=900), **values)


def pod(*containers: ContainerUsage, name: str = "web-0", **fields: Any) -> PodUsage:
    return PodUsage(PodRef("default", name, f"uid-{name}"), POD_START, containers, **fields)


def snapshot(*pods: PodUsage) -> UsageSnapshot:
    return UsageSnapshot(time=NOW, pods=pods)


def doc(*pods: PodUsage, only_cpu_and_memory: bool = False) -> dict[str, Any]:
    return summary(snapshot(*pods), node_name="vk-1", node_start_time=NODE_START,
                   only_cpu_and_memory=only_cpu_and_memory)


def sample_lines(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if line and not line.startswith("#")]


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], tuple[float, float | None]]:
    return {(s.name, frozenset(s.labels.items())): (s.value, None if s.timestamp is None else float(s.timestamp))
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


def test_no_pods_gives_the_minimal_document_with_an_empty_pod_list() -> None:
    """`pods` has no omitempty upstream: an idle node serialises `[]`, never null or a missing key."""
    body = doc()
    assert json.loads(json.dumps(body))["pods"] == []
    node = body["node"]
    assert (node["nodeName"], node["startTime"]) == ("vk-1", "2026-07-01T00:00:00Z")


def test_times_are_whole_second_rfc3339() -> None:
    """metav1.Time: UTC, whole seconds, `Z`."""
    entry = doc(pod(container()))["pods"][0]
    assert entry["startTime"] == "2026-07-01T00:01:00Z"
    assert entry["containers"][0]["startTime"] == "2026-07-01T00:01:05Z"
    assert entry["containers"][0]["cpu"]["time"] == "2026-07-01T00:10:00Z"


def test_two_containers_sum_into_pod_and_node() -> None:
    """Pod cpu/memory are the containers' sums; a field one container lacks is left out of the sum."""
    body = doc(pod(container("a", cpu_usage_core_nanoseconds=1_000, cpu_usage_nano_cores=10, memory_usage_bytes=7,
                             memory_working_set_bytes=300),
                   container("b", cpu_usage_core_nanoseconds=2_000, cpu_usage_nano_cores=20,
                             memory_working_set_bytes=400)))
    entry = body["pods"][0]
    assert [c["name"] for c in entry["containers"]] == ["a", "b"]
    assert entry["cpu"] == {"time": "2026-07-01T00:10:00Z", "usageNanoCores": 30, "usageCoreNanoSeconds": 3_000}
    assert entry["memory"] == {"time": "2026-07-01T00:10:00Z", "workingSetBytes": 700}
    assert body["node"]["cpu"]["usageCoreNanoSeconds"] == 3_000
    assert body["node"]["memory"]["workingSetBytes"] == 700


def test_pod_reference_names_namespace_and_uid() -> None:
    entry = doc(pod(container(), name="job-1"))["pods"][0]
    assert entry["podRef"] == {"name": "job-1", "namespace": "default", "uid": "uid-job-1"}


def test_available_bytes_only_with_a_limit() -> None:
    """availableBytes is limit minus working set; unlimited containers, and so their pod, omit it."""
    entry = doc(pod(container("limited", memory_limit_bytes=100_000_000), container("open")))["pods"][0]
    limited, unlimited = entry["containers"]
    assert limited["memory"]["availableBytes"] == 48_000_000
    assert "availableBytes" not in unlimited["memory"]
    assert "availableBytes" not in entry["memory"]


def test_zero_usage_is_reported_as_one() -> None:
    """metrics-server drops a whole pod when any container reports 0 CPU or memory."""
    entry = doc(pod(container(cpu_usage_core_nanoseconds=0, memory_working_set_bytes=0)))["pods"][0]
    assert entry["containers"][0]["cpu"]["usageCoreNanoSeconds"] == 1
    assert entry["containers"][0]["memory"]["workingSetBytes"] == 1


def test_optional_usage_appears_when_known() -> None:
    """rootfs, logs and network are filled from what the provider measured."""
    body = doc(pod(container(rootfs_used_bytes=5, logs_used_bytes=6), network_rx_bytes=8, network_tx_bytes=9))
    entry = body["pods"][0]
    assert entry["containers"][0]["rootfs"] == {"time": "2026-07-01T00:10:00Z", "usedBytes": 5}
    assert entry["containers"][0]["logs"]["usedBytes"] == 6
    assert entry["network"]["name"] == "eth0"
    assert (entry["network"]["rxBytes"], entry["network"]["txBytes"]) == (8, 9)
    assert entry["network"]["interfaces"] == [{"name": "eth0", "rxBytes": 8, "txBytes": 9}]


def test_unknown_optional_usage_is_omitted() -> None:
    """Nil pointers upstream are omitted keys, never nulls."""
    entry = doc(pod(container()))["pods"][0]
    assert "network" not in entry
    assert set(entry["containers"][0]) == {"name", "startTime", "cpu", "memory"}
    assert set(entry["containers"][0]["memory"]) == {"time", "workingSetBytes"}


def test_only_cpu_and_memory_trims_fs_and_network() -> None:
    entry = doc(pod(container(rootfs_used_bytes=5, logs_used_bytes=6), network_rx_bytes=8),
                only_cpu_and_memory=True)["pods"][0]
    assert "network" not in entry
    assert set(entry["containers"][0]) == {"name", "startTime", "cpu", "memory"}


def test_resource_metrics_parse_back_with_the_snapshot_values() -> None:
    """Every series metrics-server reads, with its labels, value and millisecond timestamp."""
    text = resource_metrics(snapshot(pod(container())), error=False)
    found = samples(text)
    labels = frozenset({("container", "web"), ("namespace", "default"), ("pod", "web-0")})
    at = NOW_MS / 1000
    assert found[("node_cpu_usage_seconds_total", frozenset())] == (2.7, at)
    assert found[("node_memory_working_set_bytes", frozenset())] == (52_000_000, at)
    assert found[("container_cpu_usage_seconds_total", labels)] == (2.7, at)
    assert found[("container_memory_working_set_bytes", labels)] == (52_000_000, at)
    assert found[("container_start_time_seconds", labels)] == (1782864065, None)
    pod_labels = frozenset({("namespace", "default"), ("pod", "web-0")})
    assert found[("pod_cpu_usage_seconds_total", pod_labels)] == (2.7, at)
    assert found[("resource_scrape_error", frozenset())] == (0, None)


def test_resource_metrics_lines_match_what_metrics_server_expects() -> None:
    """Line by line: usage samples end in an integer ms timestamp, container ones carry all three labels by
    substring, the start time carries no timestamp."""
    lines = sample_lines(resource_metrics(snapshot(pod(container("a"), container("b"))), error=False))
    usage = [line for line in lines if line.startswith(USAGE_NAMES)]
    assert len(usage) == 2 + 2 * 2
    for line in usage:
        assert line.split(" ")[-1] == str(NOW_MS)
        if line.startswith("container_"):
            assert all(f'{label}="' in line for label in ("container", "namespace", "pod"))
    starts = [line for line in lines if line.startswith("container_start_time_seconds")]
    assert len(starts) == 2
    assert all(re.fullmatch(r'container_start_time_seconds\{[^}]*\} 1\.782864065e\+09', line) for line in starts)


def test_resource_metrics_never_report_zero_usage() -> None:
    """An idle node and a pod with zero usage still give metrics-server values it keeps."""
    lines = sample_lines(resource_metrics(snapshot(pod(container(cpu_usage_core_nanoseconds=0,
                                                                    memory_working_set_bytes=0))), error=False))
    values = {line.split("{")[0].split(" ")[0]: float(line.split(" ")[1]) for line in lines}
    assert values["container_cpu_usage_seconds_total"] == 1e-9
    assert values["container_memory_working_set_bytes"] == 1
    assert values["node_cpu_usage_seconds_total"] > 0
    assert values["node_memory_working_set_bytes"] > 0


def test_resource_metrics_of_an_idle_node_keep_the_node_point() -> None:
    lines = sample_lines(resource_metrics(snapshot(), error=False))
    assert f"node_cpu_usage_seconds_total 1e-09 {NOW_MS}" in lines
    assert f"node_memory_working_set_bytes 1.0 {NOW_MS}" in lines


def test_provider_failure_reports_only_the_scrape_error() -> None:
    text = resource_metrics(None, error=True)
    assert sample_lines(text) == ["resource_scrape_error 1.0"]
    assert samples(text) == {("resource_scrape_error", frozenset()): (1, None)}


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)))
def test_sample_timestamps_are_the_snapshot_millisecond(moment: datetime) -> None:
    """Float seconds times 1000 must never truncate to the millisecond before."""
    moment = moment.replace(tzinfo=UTC)
    expected = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    lines = sample_lines(resource_metrics(UsageSnapshot(time=moment, pods=()), error=False))
    assert lines[0].split(" ")[-1] == str(expected)
