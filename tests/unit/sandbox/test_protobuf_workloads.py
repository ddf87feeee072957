"""Decoding kubectl 1.33's protobuf bodies for `create role|clusterrole|rolebinding|clusterrolebinding|deployment`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.sandbox import kubectl_protobuf_workload_bodies as captured
from vnode.sandbox.protobuf import UnsupportedProtobuf, decode_object

RBAC = "rbac.authorization.k8s.io"


def _deployment(name: str, replicas: int, container: dict[str, Any]) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
                     "strategy": {}},
            "status": {}}


# What kubectl 1.27 sends as JSON for the same commands (creationTimestamp: null dropped).
EXPECTED: list[tuple[bytes, dict[str, Any]]] = [
    (captured.ROLE,
     {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "pod-reader"},
      "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}]}),
    (captured.CLUSTER_ROLE,
     {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
      "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]},
                {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}),
    (captured.CLUSTER_ROLE_AGGREGATED,
     {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": "agg"},
      "aggregationRule": {"clusterRoleSelectors": [
          {"matchLabels": {"rbac.example.com/aggregate-to-monitoring": "true"}}]}}),
    (captured.ROLE_BINDING,
     {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
      "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "alice"},
                   {"kind": "Group", "apiGroup": RBAC, "name": "devs"},
                   {"kind": "ServiceAccount", "name": "robot", "namespace": "default"}],
      "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "pod-reader"}}),
    (captured.CLUSTER_ROLE_BINDING,
     {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
      "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}],
      "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "reader"}}),
    (captured.DEPLOYMENT,
     _deployment("web", 2, {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                            "resources": {}})),
    (captured.DEPLOYMENT_WITH_COMMAND,
     _deployment("cmd", 1, {"name": "busybox", "image": "busybox", "command": ["sleep", "3600"], "resources": {}})),
]


@pytest.mark.parametrize(("body", "expected"), EXPECTED,
                         ids=[expected["kind"] + str(i) for i, (_, expected) in enumerate(EXPECTED)])
def test_kubectl_bodies_decode_as_kubectl_json(body: bytes, expected: dict[str, Any]) -> None:
    """Bodies captured from kubectl 1.33 decode to what kubectl 1.27 sends as JSON for the same command."""
    assert decode_object(body) == expected


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field; every length here is under 128, so it fits one varint byte."""
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_a_container_field_kubectl_never_sends_is_refused() -> None:
    """A Deployment whose container carries a probe (Container field 10, not described) is refused, not stripped."""
    container = _field(1, b"c") + _field(2, b"nginx") + _field(10, b"")
    spec = _field(2, _field(3, _field(2, _field(2, container))))  # Deployment.spec.template.spec.containers[0]
    type_meta = _field(1, b"apps/v1") + _field(2, b"Deployment")
    body = b"k8s\x00" + _field(1, type_meta) + _field(2, _field(1, _field(1, b"web")) + spec)
    with pytest.raises(UnsupportedProtobuf, match="field 10 of Container is not supported"):
        decode_object(body)
