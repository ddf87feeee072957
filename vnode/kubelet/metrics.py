"""vnode's own Prometheus metrics, served on the kubelet's `/metrics`: pods by phase, provider calls, work queue
depth, API client throttling, kubelet API requests and open streams.

Owns one `CollectorRegistry` per `VnodeMetrics` (never prometheus_client's global registry). Gauges that mirror
state elsewhere (pods, queues, throttling) are read at scrape time through callables, so nothing here keeps a copy
that could drift; it must not import the parts it observes. Counters and histograms are prometheus_client's own,
so each labelled series also gets the library's `_created` sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

PodSource = Callable[[], Iterable[Mapping[str, Any]]]
QueueDepths = Mapping[str, Callable[[], int]]
ThrottleSource = Callable[[], tuple[float, int]]  # (seconds waited in total, requests that waited)

POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
STREAM_KINDS = ("exec", "attach", "portforward", "logs")
# Provider calls range from a cheap ping to an ECI create that pulls an image: buckets reach a minute.
PROVIDER_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _SourcesCollector:
    """The scrape-time gauges and counters whose values live elsewhere; each is left out until its source is set,
    except pods by phase, which always lists every phase."""

    def __init__(self) -> None:
        self.pods: PodSource | None = None
        self.queues: QueueDepths = {}
        self.throttling: ThrottleSource | None = None

    def collect(self) -> Iterable[Metric]:
        yield self._pods()
        if self.queues:
            depth = GaugeMetricFamily("vnode_workqueue_depth", "Keys waiting in each work queue", labels=["name"])
            for name, read in sorted(self.queues.items()):
                depth.add_metric([name], float(read()))
            yield depth
        if self.throttling is not None:
            waited_seconds, throttled = self.throttling()
            yield CounterMetricFamily("vnode_api_client_throttled_seconds_total",
                                      "Seconds API requests spent waiting for the client-side rate limiter",
                                      value=waited_seconds)
            yield CounterMetricFamily("vnode_api_client_throttled_requests_total",
                                      "API requests that had to wait for the client-side rate limiter",
                                      value=float(throttled))

    def _pods(self) -> Metric:
        counts = dict.fromkeys(POD_PHASES, 0)
        for pod in self.pods() if self.pods is not None else ():
            # A pod the API server stored without status.phase is Pending.
            phase = (pod.get("status") or {}).get("phase") or "Pending"
            counts[phase if phase in counts else "Unknown"] += 1
        family = GaugeMetricFamily("vnode_pods", "Pods bound to this node, by status.phase", labels=["phase"])
        for phase, count in counts.items():
            family.add_metric([phase], float(count))
        return family


class VnodeMetrics:
    """vnode's metrics. Sources built after this object (the informer, the queues, the API client) are attached
    with `connect`; recording calls are cheap and synchronous, for use on the event loop."""

    def __init__(self, *, pods: PodSource | None = None, queues: QueueDepths | None = None,
                 throttling: ThrottleSource | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._sources = _SourcesCollector()
        self.connect(pods=pods, queues=queues, throttling=throttling)
        self.registry.register(self._sources)
        self._provider_seconds = Histogram(
            "vnode_provider_call_duration_seconds", "Duration of provider calls (failed ones included)",
            ["method"], buckets=PROVIDER_CALL_BUCKETS, registry=self.registry)
        self._provider_errors = Counter(
            "vnode_provider_call_errors", "Provider calls that raised, by exception class",
            ["method", "error"], registry=self.registry)
        self._requests = Counter(
            "vnode_kubelet_requests", "Requests served by the kubelet API, by route pattern and HTTP status",
            ["route", "code"], registry=self.registry)
        self._streams = Gauge(
            "vnode_kubelet_streams", "Streaming kubelet API sessions open now", ["kind"], registry=self.registry)
        for kind in STREAM_KINDS:
            self._streams.labels(kind=kind)  # present at 0 before the first session

    def connect(self, *, pods: PodSource | None = None, queues: QueueDepths | None = None,
                throttling: ThrottleSource | None = None) -> None:
        """Set the scrape-time sources; each one given replaces the previous one."""
        if pods is not None:
            self._sources.pods = pods
        if queues is not None:
            self._sources.queues = dict(queues)
        if throttling is not None:
            self._sources.throttling = throttling

    def observe_provider_call(self, method: str, seconds: float | None, error: BaseException | None) -> None:
        """Record one provider call. `seconds` is None for calls that are counted but not timed (the interactive
        sessions, whose length is the user's); `error` is what the call raised, None on success."""
        if seconds is not None:
            self._provider_seconds.labels(method=method).observe(seconds)
        if error is not None:
            self._provider_errors.labels(method=method, error=type(error).__name__).inc()

    def request_done(self, route: str, code: int) -> None:
        """Count a kubelet API response; `route` is the route pattern (`/exec/{namespace}/...`), never the path,
        which would make a series per pod."""
        self._requests.labels(route=route, code=str(code)).inc()

    def stream_opened(self, kind: str) -> None:
        self._streams.labels(kind=kind).inc()

    def stream_closed(self, kind: str) -> None:
        self._streams.labels(kind=kind).dec()

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of every metric, and its Content-Type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
