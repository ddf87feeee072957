"""resolve_pod as a whole: the kube-api-access volume, the resolved pod's identity and the events it returns."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.pods.fakes import FakeSource, container, make_pod
from vnode.pods.resolve import MissingReference, resolve_pod
from vnode.providers.base import PodRef, ProviderEvent, VolumeFile

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

# The volume kube-apiserver's ServiceAccount admission adds to every pod that automounts a token.
KUBE_API_ACCESS: dict[str, Any] = {"name": "kube-api-access-7xk2p", "projected": {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace",
                                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


async def test_kube_api_access_volume_resolves() -> None:
    """The injected kube-api-access volume yields token, ca.crt and namespace, all 0644."""
    source = FakeSource().add_configmap("kube-root-ca.crt", {"ca.crt": CA})
    pod = make_pod(container(), volumes=[KUBE_API_ACCESS])
    resolution = await resolve_pod(pod, source, node_name="vnode-1", host_ip="10.0.0.5")
    assert resolution.pod.volumes["kube-api-access-7xk2p"].files == (
        VolumeFile("token", b"token-builder-1", 0o644), VolumeFile("ca.crt", CA.encode(), 0o644),
        VolumeFile("namespace", b"ns", 0o644))
    assert (source.token_requests[0].service_account, source.token_requests[0].expiration_seconds) == ("builder", 3607)


async def test_kube_api_access_without_root_ca_is_retried() -> None:
    """Before kube-root-ca.crt is published the pod waits with MandatoryConfigMapNotFound."""
    with pytest.raises(MissingReference) as caught:
        await resolve_pod(make_pod(container(), volumes=[KUBE_API_ACCESS]), FakeSource(), node_name="vnode-1",
                          host_ip="10.0.0.5")
    assert caught.value.event == ProviderEvent("Warning", "MandatoryConfigMapNotFound",
                                               'configmap "kube-root-ca.crt" not found')


async def test_resolved_pod_keeps_the_stored_pod() -> None:
    """The ResolvedPod refers to the pod it was given, by identity and by namespace/name/uid."""
    pod = make_pod(container())
    resolved = (await resolve_pod(pod, FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")).pod
    assert (resolved.ref, resolved.pod is pod) == (PodRef("ns", "p", "uid-1"), True)


async def test_repeated_warnings_are_recorded_once() -> None:
    """The same Warning raised by several containers appears once in the resolution's events."""
    env_from = [{"configMapRef": {"name": "gone", "optional": True}}]
    pod = make_pod(container("a", envFrom=env_from), container("b", envFrom=env_from))
    resolution = await resolve_pod(pod, FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")
    assert resolution.events == (ProviderEvent("Warning", "OptionalConfigMapNotFound", 'configmap "gone" not found'),)


async def test_missing_reference_carries_earlier_warnings() -> None:
    """MissingReference.events holds the warnings gathered before it, ending with its own event."""
    env = [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "opt", "key": "k", "optional": True}}},
           {"name": "B", "valueFrom": {"secretKeyRef": {"name": "req", "key": "k"}}}]
    with pytest.raises(MissingReference) as caught:
        await resolve_pod(make_pod(container(env=env)), FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")
    assert [e.reason for e in caught.value.events] == ["OptionalSecretNotFound", "MandatorySecretNotFound"]
    assert caught.value.events[-1] == caught.value.event


async def test_node_name_fills_an_unset_spec_node_name() -> None:
    """spec.nodeName falls back to the node this kubelet runs as."""
    pod = make_pod(container(env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]))
    del pod["spec"]["nodeName"]
    resolution = await resolve_pod(pod, FakeSource(), node_name="vnode-2", host_ip="10.0.0.5")
    assert resolution.pod.env["c"][0].value == "vnode-2"


async def test_pod_ip_falls_back_to_stored_status() -> None:
    """Without a pod_ip argument, status.podIP comes from the stored pod's status."""
    pod = make_pod(container(env=[{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]))
    pod["status"]["podIP"] = "172.17.0.4"
    resolution = await resolve_pod(pod, FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")
    assert resolution.pod.env["c"][0].value == "172.17.0.4"


async def test_secret_values_stay_out_of_repr() -> None:
    """A resolution's repr shows no env value or file content."""
    source = FakeSource().add_secret("s", {"pw": "hunter2"})
    pod = make_pod(container(env=[{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}}]),
                   volumes=[{"name": "v", "secret": {"secretName": "s"}}])
    resolution = await resolve_pod(pod, source, node_name="vnode-1", host_ip="10.0.0.5")
    assert "hunter2" not in repr(resolution)
