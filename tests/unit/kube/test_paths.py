"""REST path helpers."""

from __future__ import annotations

from vnode.kube import paths


def test_core_namespaced_and_cluster_scoped_paths() -> None:
    """Core resources live under /api/v1, namespaced ones under namespaces/<ns>, subresources last."""
    assert paths.pods_path() == "/api/v1/pods"
    assert paths.pods_path("ci") == "/api/v1/namespaces/ci/pods"
    assert paths.pod_path("ci", "build-1") == "/api/v1/namespaces/ci/pods/build-1"
    assert paths.pod_path("ci", "build-1", "status") == "/api/v1/namespaces/ci/pods/build-1/status"
    assert paths.node_path("vn-1", "status") == "/api/v1/nodes/vn-1/status"
    assert paths.events_path("default") == "/api/v1/namespaces/default/events"


def test_group_resources_live_under_apis() -> None:
    """Non-core groups are served under /apis/<group>/<version>."""
    assert paths.lease_path("kube-node-lease", "vn-1") == \
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vn-1"


def test_path_segments_are_escaped() -> None:
    """A '/' in a name cannot escape its path segment."""
    assert paths.pod_path("ci", "a/b") == "/api/v1/namespaces/ci/pods/a%2Fb"
