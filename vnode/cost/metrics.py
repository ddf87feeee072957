"""Prometheus counters of what pods cost, per namespace and job: `vnode_cost_total{namespace,job,currency}` and
`vnode_billed_seconds_total{namespace,job}`.

Registered on the registry it is given (vnode's own, served on the kubelet's /metrics), never the global one. No
per-build or per-pod label: build numbers grow without bound, and every label value is a series kept forever.
The recorder adds to them each time a billed interval closes, so a pod's cost shows up as it changes state and
when it ends, not continuously while it runs.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter


class CostMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # prometheus_client appends `_total` to a counter's name on exposition.
        self._cost = Counter("vnode_cost", "Cost of billed pod time, at the ledger's price basis",
                             ["namespace", "job", "currency"], registry=registry)
        self._seconds = Counter("vnode_billed_seconds", "Seconds pods spent in billed states",
                                ["namespace", "job"], registry=registry)

    def add(self, *, namespace: str, job: str, currency: str, seconds: Decimal, cost: Decimal) -> None:
        if seconds <= 0:
            return
        self._seconds.labels(namespace, job).inc(float(seconds))
        self._cost.labels(namespace, job, currency).inc(float(cost))
