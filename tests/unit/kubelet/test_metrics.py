"""vnode's own /metrics: every metric appears with its labels and the values the recording calls and sources give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vnode.errors import BackendUnavailable, NotFound
from vnode.kubelet.metrics import POD_PHASES, STREAM_KINDS, VnodeMetrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: VnodeMetrics) -> Samples:
    body, _ = metrics.exposition()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def key(metric: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return metric, frozenset(labels.items())


def pod_in(phase: str | None) -> Mapping[str, Any]:
    return {"metadata": {"name": "p"}, "status": {} if phase is None else {"phase": phase}}


def test_every_phase_is_present_at_zero_without_pods() -> None:
    found = scrape(VnodeMetrics())
    assert {phase: found[key("vnode_pods", phase=phase)] for phase in POD_PHASES} == dict.fromkeys(POD_PHASES, 0)


def test_pods_are_counted_by_phase_and_a_missing_phase_is_pending() -> None:
    pods = [pod_in("Running"), pod_in("Running"), pod_in("Failed"), pod_in(None)]
    found = scrape(VnodeMetrics(pods=lambda: pods))
    assert [found[key("vnode_pods", phase=phase)] for phase in POD_PHASES] == [1, 2, 0, 1, 0]


def test_pod_source_is_read_at_scrape_time() -> None:
    """The informer cache changes between scrapes; nothing is copied at construction."""
    pods: list[Mapping[str, Any]] = []
    metrics = VnodeMetrics()
    metrics.connect(pods=lambda: pods)
    pods.append(pod_in("Succeeded"))
    assert scrape(metrics)[key("vnode_pods", phase="Succeeded")] == 1


def test_provider_call_durations_are_a_histogram_by_method() -> None:
    metrics = VnodeMetrics()
    metrics.observe_provider_call("create_pod", 0.2, None)
    metrics.observe_provider_call("create_pod", 3.0, BackendUnavailable("down"))
    found = scrape(metrics)
    assert found[key("vnode_provider_call_duration_seconds_count", method="create_pod")] == 2
    assert found[key("vnode_provider_call_duration_seconds_sum", method="create_pod")] == pytest.approx(3.2)
    assert found[key("vnode_provider_call_duration_seconds_bucket", method="create_pod", le="0.25")] == 1


def test_provider_errors_are_counted_by_method_and_exception_class() -> None:
    metrics = VnodeMetrics()
    metrics.observe_provider_call("ping", 0.1, BackendUnavailable("down"))
    metrics.observe_provider_call("ping", 0.1, BackendUnavailable("still down"))
    metrics.observe_provider_call("exec", None, NotFound("no such container"))
    found = scrape(metrics)
    assert found[key("vnode_provider_call_errors_total", method="ping", error="BackendUnavailable")] == 2
    assert found[key("vnode_provider_call_errors_total", method="exec", error="NotFound")] == 1


def test_untimed_calls_add_no_duration() -> None:
    """Sessions (exec, attach, port_forward) are counted on error but never enter the histogram."""
    metrics = VnodeMetrics()
    metrics.observe_provider_call("attach", None, NotFound("gone"))
    assert not any(name.startswith("vnode_provider_call_duration") for name, _ in scrape(metrics))


def test_queue_depth_by_queue_name() -> None:
    depths = {"pods": 4, "status": 1}
    metrics = VnodeMetrics(queues={"pods": lambda: depths["pods"], "status": lambda: depths["status"]})
    depths["pods"] = 7
    found = scrape(metrics)
    assert found[key("vnode_workqueue_depth", name="pods")] == 7
    assert found[key("vnode_workqueue_depth", name="status")] == 1


def test_api_client_throttling_counters() -> None:
    found = scrape(VnodeMetrics(throttling=lambda: (2.5, 3)))
    assert found[key("vnode_api_client_throttled_seconds_total")] == 2.5
    assert found[key("vnode_api_client_throttled_requests_total")] == 3


def test_unset_sources_are_left_out() -> None:
    names = {name for name, _ in scrape(VnodeMetrics())}
    assert not names & {"vnode_workqueue_depth", "vnode_api_client_throttled_seconds_total"}


def test_kubelet_requests_by_route_and_code() -> None:
    metrics = VnodeMetrics()
    metrics.request_done("/stats/summary", 200)
    metrics.request_done("/stats/summary", 200)
    metrics.request_done("/containerLogs/{namespace}/{pod}/{container}", 404)
    found = scrape(metrics)
    assert found[key("vnode_kubelet_requests_total", route="/stats/summary", code="200")] == 2
    assert found[key("vnode_kubelet_requests_total", route="/containerLogs/{namespace}/{pod}/{container}",
                     code="404")] == 1


def test_open_streams_by_kind() -> None:
    metrics = VnodeMetrics()
    metrics.stream_opened("exec")
    metrics.stream_opened("exec")
    metrics.stream_opened("logs")
    metrics.stream_closed("exec")
    found = scrape(metrics)
    assert {kind: found[key("vnode_kubelet_streams", kind=kind)] for kind in STREAM_KINDS} == {
        "exec": 1, "attach": 0, "portforward": 0, "logs": 1}


def test_instances_do_not_share_state() -> None:
    """Each VnodeMetrics owns its registry: two agents in one process (tests, sandbox) never mix numbers."""
    first, second = VnodeMetrics(), VnodeMetrics()
    first.request_done("/pods", 200)
    assert key("vnode_kubelet_requests_total", route="/pods", code="200") not in scrape(second)


def test_exposition_is_prometheus_text() -> None:
    body, content_type = VnodeMetrics().exposition()
    assert content_type.startswith("text/plain;")
    assert b"# TYPE vnode_pods gauge" in body
