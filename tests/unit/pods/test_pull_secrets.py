"""imagePullSecrets become registry credentials on the resolved pod; a missing one only warns, as in the kubelet."""

from __future__ import annotations

import base64
import json

from tests.unit.pods.fakes import FakeSource, container, make_pod
from vnode.pods.resolve import resolve_pod
from vnode.providers.base import ProviderEvent, RegistryAuth
from vnode.providers.registry import auth_for_image, image_registry


def docker_config(auths: dict[str, dict[str, str]]) -> str:
    return json.dumps({"auths": auths})


async def test_dockerconfigjson_with_username_and_password() -> None:
    source = FakeSource().add_secret("regcred", {".dockerconfigjson": docker_config(
        {"registry.example.com:5000": {"username": "ci", "password": "s3cret"}})})
    pod = make_pod(container(), imagePullSecrets=[{"name": "regcred"}])
    resolution = await resolve_pod(pod, source, node_name="n", host_ip="10.0.0.5")
    assert resolution.pod.registry_auth == (RegistryAuth("registry.example.com:5000", "ci", "s3cret"),)
    assert resolution.events == ()


async def test_auth_field_and_legacy_dockercfg() -> None:
    auth = base64.b64encode(b"robot:tok:en").decode()  # the password may contain a colon
    source = (FakeSource()
              .add_secret("new", {".dockerconfigjson": docker_config({"https://index.docker.io/v1/": {"auth": auth}})})
              .add_secret("old", {".dockercfg": json.dumps({"quay.io": {"username": "u", "password": "p"}})}))
    pod = make_pod(container(), imagePullSecrets=[{"name": "new"}, {"name": "old"}])
    resolution = await resolve_pod(pod, source, node_name="n", host_ip="10.0.0.5")
    assert resolution.pod.registry_auth == (RegistryAuth("https://index.docker.io/v1/", "robot", "tok:en"),
                                           RegistryAuth("quay.io", "u", "p"))


async def test_missing_pull_secret_warns_and_goes_on() -> None:
    pod = make_pod(container(), imagePullSecrets=[{"name": "absent"}])
    resolution = await resolve_pod(pod, FakeSource(), node_name="n", host_ip="10.0.0.5")
    assert resolution.pod.registry_auth == ()
    assert resolution.events == (ProviderEvent(
        "Warning", "FailedToRetrieveImagePullSecret",
        "Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed."),)


def test_credentials_never_show_in_repr() -> None:
    assert "s3cret" not in repr(RegistryAuth("r", "ci", "s3cret"))


def test_image_registry() -> None:
    assert image_registry("busybox") == "docker.io"
    assert image_registry("library/busybox:1.36") == "docker.io"
    assert image_registry("registry.example.com:5000/team/app@sha256:abc") == "registry.example.com:5000"
    assert image_registry("localhost/app") == "localhost"


def test_auth_for_image_matches_by_host() -> None:
    hub = RegistryAuth("https://index.docker.io/v1/", "a", "b")
    private = RegistryAuth("registry.example.com", "c", "d")
    assert auth_for_image("jenkins/inbound-agent", [private, hub]) == hub
    assert auth_for_image("registry.example.com/x/y:1", [hub, private]) == private
    assert auth_for_image("quay.io/x", [hub, private]) is None
