"""The scheduler's filters: why a pod does or does not fit a node."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction
from typing import Any

from vnode.sandbox.scheduler import unfit_reason


def node(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "n", "labels": {"type": "virtual-kubelet", "zone": "a"}}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "3"}}}


def pod(requests: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "i", "resources": {"requests": requests or {}}}
    return {"metadata": {"name": "p"}, "spec": {"containers": [container], **spec}}


def fits(p: dict[str, Any], n: dict[str, Any], used: dict[str, Fraction] | None = None, count: int = 0) -> str | None:
    return unfit_reason(p, n, defaultdict(Fraction, used or {}), count)


def test_a_plain_pod_fits_a_ready_node() -> None:
    """No constraints, enough room: it fits."""
    assert fits(pod({"cpu": "500m"}), node()) is None


def test_not_ready_node_is_skipped() -> None:
    """A node without Ready=True takes no pods."""
    n = node()
    n["status"]["conditions"][0]["status"] = "Unknown"
    assert fits(pod(), n) == "node(s) were unschedulable or not ready"


def test_node_selector_must_match_labels() -> None:
    """nodeSelector compares exactly against node labels."""
    assert fits(pod(nodeSelector={"type": "virtual-kubelet"}), node()) is None
    assert fits(pod(nodeSelector={"type": "other"}), node()) == "node(s) didn't match Pod's node affinity/selector"


def test_required_node_affinity_is_honoured() -> None:
    """requiredDuringScheduling node affinity terms filter nodes."""
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]}}}
    assert fits(pod(affinity=affinity), node()) == "node(s) didn't match Pod's node affinity/selector"


def test_untolerated_no_schedule_taint_blocks() -> None:
    """A NoSchedule taint needs a matching toleration; PreferNoSchedule does not block."""
    tainted = node(taints=[{"key": "virtual-kubelet.io/provider", "value": "eci", "effect": "NoSchedule"}])
    assert fits(pod(), tainted) == "node(s) had untolerated taint {virtual-kubelet.io/provider: eci}"
    tolerating = pod(tolerations=[{"key": "virtual-kubelet.io/provider", "operator": "Exists"}])
    assert fits(tolerating, tainted) is None
    assert fits(pod(), node(taints=[{"key": "x", "effect": "PreferNoSchedule"}])) is None


def test_requests_beyond_allocatable_do_not_fit() -> None:
    """cpu and memory requests add up against allocatable."""
    assert fits(pod({"cpu": "1500m"}), node(), {"cpu": Fraction(1)}) == "Insufficient cpu"
    assert fits(pod({"memory": "5Gi"}), node()) == "Insufficient memory"


def test_pod_count_is_limited_by_allocatable_pods() -> None:
    """allocatable.pods caps how many pods a node takes."""
    assert fits(pod(), node(), count=3) == "Too many pods"


def test_extended_resource_must_be_offered() -> None:
    """A GPU request fits only a node that advertises GPUs."""
    assert fits(pod({"nvidia.com/gpu": "1"}), node()) == "Insufficient nvidia.com/gpu"
