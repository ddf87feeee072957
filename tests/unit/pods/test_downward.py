"""Downward API values in env: fieldRef paths and resourceFieldRef rounding, divisors and allocatable defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.unit.pods.fakes import FakeSource, container, make_pod
from vnode.errors import InvalidPod
from vnode.pods.resolve import resolve_pod


async def env_value(selector: Mapping[str, Any], *, pod: dict[str, Any] | None = None, pod_ip: str = "",
                    allocatable: Mapping[str, str] | None = None) -> str:
    """The value of one variable `V` with the given valueFrom, in container `c` of `pod`."""
    pod = pod or make_pod(container(resources={"limits": {"cpu": "1250m", "memory": "64Mi"},
                                               "requests": {"cpu": "250m", "memory": "1M"}}))
    pod["spec"]["containers"][0]["env"] = [{"name": "V", "valueFrom": dict(selector)}]
    resolution = await resolve_pod(pod, FakeSource(), node_name="vnode-1", host_ip="10.0.0.5", pod_ip=pod_ip,
                                   allocatable=allocatable)
    return resolution.pod.env["c"][0].value


def field(path: str) -> dict[str, Any]:
    return {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}


def resource(name: str, **extra: Any) -> dict[str, Any]:
    return {"resourceFieldRef": {"resource": name, **extra}}


@pytest.mark.parametrize(("path", "expected"), [
    ("metadata.name", "p"),
    ("metadata.namespace", "ns"),
    ("metadata.uid", "uid-1"),
    ("metadata.labels['app']", "web"),
    ("metadata.annotations['note']", 'say "hi"\n'),
    ("spec.nodeName", "vnode-1"),
    ("spec.serviceAccountName", "builder"),
    ("status.hostIP", "10.0.0.5"),
    ("status.hostIPs", "10.0.0.5"),
])
async def test_field_paths(path: str, expected: str) -> None:
    """Each supported fieldPath gives the pod's (or the node's) value."""
    assert await env_value(field(path)) == expected


async def test_missing_label_subscript_is_empty() -> None:
    """A subscript naming an absent label gives the empty string."""
    assert await env_value(field("metadata.labels['absent']")) == ""


async def test_pod_ip_comes_from_the_argument() -> None:
    """status.podIP and status.podIPs use the pod IP passed in, which the stored pod does not have yet."""
    assert [await env_value(field(p), pod_ip="172.17.0.9") for p in ("status.podIP", "status.podIPs")] == [
        "172.17.0.9", "172.17.0.9"]


async def test_whole_label_map_uses_kubelet_format() -> None:
    """metadata.labels without a subscript gives sorted `key="value"` lines."""
    assert await env_value(field("metadata.labels")) == 'app="web"\ntier="front"'


async def test_api_version_defaults_to_v1() -> None:
    """A fieldRef without apiVersion is read as v1."""
    assert await env_value({"fieldRef": {"fieldPath": "metadata.name"}}) == "p"


@pytest.mark.parametrize("path", ["status.phase", "spec.restartPolicy", "metadata.generateName",
                                  "spec.nodeName['x']", "metadata.labels['bad key']"])
async def test_unsupported_field_path_is_invalid(path: str) -> None:
    """A fieldPath the kubelet cannot resolve raises InvalidPod naming the field."""
    with pytest.raises(InvalidPod) as caught:
        await env_value(field(path))
    assert caught.value.field == "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath"


async def test_other_api_version_is_invalid() -> None:
    """A fieldRef apiVersion other than v1 raises InvalidPod."""
    with pytest.raises(InvalidPod) as caught:
        await env_value({"fieldRef": {"apiVersion": "v2", "fieldPath": "metadata.name"}})
    assert caught.value.field == "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion"


async def test_cpu_rounds_up_to_whole_cores() -> None:
    """limits.cpu 1250m with the default divisor 1 gives 2."""
    assert await env_value(resource("limits.cpu")) == "2"


async def test_cpu_in_millicores() -> None:
    """requests.cpu 250m with divisor 1m gives 250."""
    assert await env_value(resource("requests.cpu", divisor="1m")) == "250"


async def test_cpu_millicores_round_up() -> None:
    """A fractional millicore rounds up before dividing."""
    pod = make_pod(container(resources={"requests": {"cpu": "0.0001"}}))
    assert await env_value(resource("requests.cpu", divisor="1m"), pod=pod) == "1"


async def test_memory_in_bytes_by_default() -> None:
    """limits.memory 64Mi with no divisor gives bytes."""
    assert await env_value(resource("limits.memory")) == str(64 * 2**20)


async def test_memory_with_divisor() -> None:
    """limits.memory 64Mi with divisor 1Mi gives 64."""
    assert await env_value(resource("limits.memory", divisor="1Mi")) == "64"


async def test_memory_quotient_rounds_up() -> None:
    """requests.memory 1M with divisor 1Mi gives 1 (0.95 rounded up), as the kubelet does."""
    assert await env_value(resource("requests.memory", divisor="1Mi")) == "1"


async def test_unset_limit_reads_node_allocatable() -> None:
    """An unset limit takes the node's allocatable value."""
    pod = make_pod(container())
    assert await env_value(resource("limits.memory", divisor="1Gi"), pod=pod, allocatable={"memory": "32Gi"}) == "32"


async def test_unset_request_is_zero() -> None:
    """An unset request gives 0, never allocatable."""
    pod = make_pod(container())
    assert await env_value(resource("requests.cpu"), pod=pod, allocatable={"cpu": "8"}) == "0"


async def test_unset_limit_without_allocatable_is_zero() -> None:
    """With no allocatable given, an unset limit gives 0."""
    assert await env_value(resource("limits.ephemeral-storage"), pod=make_pod(container())) == "0"


async def test_container_name_selects_another_container() -> None:
    """resourceFieldRef.containerName reads another container's resources."""
    pod = make_pod(container(), container("side", resources={"limits": {"cpu": "3"}}))
    assert await env_value(resource("limits.cpu", containerName="side"), pod=pod) == "3"


@pytest.mark.parametrize(("selector", "field_path"), [
    (resource("limits.gpu"), "resource"),
    (resource("cpu"), "resource"),
    (resource("limits.cpu", divisor="lots"), "divisor"),
    (resource("limits.cpu", containerName="nope"), "containerName"),
])
async def test_malformed_resource_field_ref_is_invalid(selector: dict[str, Any], field_path: str) -> None:
    """An unsupported resource, bad divisor or unknown container raises InvalidPod naming the field."""
    with pytest.raises(InvalidPod) as caught:
        await env_value(selector)
    assert caught.value.field == f"spec.containers[0].env[0].valueFrom.resourceFieldRef.{field_path}"
