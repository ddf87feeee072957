"""Volumes through resolve_pod: configMap, secret, downwardAPI, projected, emptyDir and pass-through sources."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.pods.fakes import FakeSource, container, make_pod
from vnode.errors import InvalidPod, NotSupported
from vnode.pods.resolve import MissingReference, Resolution, resolve_pod
from vnode.providers.base import PodRef, ProviderEvent, ResolvedVolume, VolumeFile


async def resolve(volume: dict[str, Any], source: FakeSource | None = None, **spec: Any) -> Resolution:
    pod = make_pod(container(), volumes=[volume], **spec)
    return await resolve_pod(pod, source or FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")


async def files_of(volume: dict[str, Any], source: FakeSource | None = None, **spec: Any) -> dict[str, VolumeFile]:
    resolved = (await resolve(volume, source, **spec)).pod.volumes[volume["name"]]
    assert resolved.kind == "files"
    return {f.path: f for f in resolved.files}


def cfg_source() -> FakeSource:
    return FakeSource().add_configmap("cfg", {"app.conf": "x=1", "log.conf": "y=2"}, binary={"logo.png": b"\x89PNG"})


async def test_configmap_every_key_with_default_mode() -> None:
    """Without items every data and binaryData key becomes a file, mode 0644."""
    files = await files_of({"name": "v", "configMap": {"name": "cfg"}}, cfg_source())
    assert {p: (f.content, f.mode) for p, f in files.items()} == {
        "app.conf": (b"x=1", 0o644), "log.conf": (b"y=2", 0o644), "logo.png": (b"\x89PNG", 0o644)}


async def test_configmap_default_mode() -> None:
    """defaultMode applies to every file."""
    files = await files_of({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400}}, cfg_source())
    assert {f.mode for f in files.values()} == {0o400}


async def test_items_map_keys_to_paths_with_per_item_mode() -> None:
    """items project only the listed keys, at their paths, with their own mode or defaultMode."""
    volume = {"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o440, "items": [
        {"key": "app.conf", "path": "conf/app.conf", "mode": 0o600}, {"key": "logo.png", "path": "img/logo"}]}}
    files = await files_of(volume, cfg_source())
    assert {p: f.mode for p, f in files.items()} == {"conf/app.conf": 0o600, "img/logo": 0o440}


async def test_secret_volume_decodes_data() -> None:
    """A secret volume writes the decoded bytes of each key."""
    source = FakeSource().add_secret("tls", {"tls.key": b"\x00key"})
    files = await files_of({"name": "v", "secret": {"secretName": "tls"}}, source)
    assert files == {"tls.key": VolumeFile("tls.key", b"\x00key", 0o644)}


async def test_missing_mandatory_volume_secret_raises() -> None:
    """An absent secret for a mandatory volume raises MissingReference with MandatorySecretNotFound."""
    with pytest.raises(MissingReference) as caught:
        await resolve({"name": "v", "secret": {"secretName": "gone"}})
    assert caught.value.event == ProviderEvent("Warning", "MandatorySecretNotFound", 'secret "gone" not found')


async def test_missing_mandatory_item_key_raises() -> None:
    """An item naming an absent key raises MissingReference with MandatoryConfigMapKeyNotFound."""
    volume = {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "nope", "path": "n"}]}}
    with pytest.raises(MissingReference) as caught:
        await resolve(volume, cfg_source())
    assert caught.value.event.reason == "MandatoryConfigMapKeyNotFound"


async def test_missing_optional_volume_object_is_empty() -> None:
    """An optional configMap that is absent gives an empty volume and an OptionalConfigMapNotFound warning."""
    resolution = await resolve({"name": "v", "configMap": {"name": "gone", "optional": True}})
    assert resolution.pod.volumes["v"] == ResolvedVolume("v", "files")
    assert [e.reason for e in resolution.events] == ["OptionalConfigMapNotFound"]


async def test_missing_optional_item_key_is_skipped() -> None:
    """An optional volume's item naming an absent key is left out, with an OptionalSecretKeyNotFound warning."""
    source = FakeSource().add_secret("s", {"a": "1"})
    volume = {"name": "v", "secret": {"secretName": "s", "optional": True,
                                      "items": [{"key": "a", "path": "a"}, {"key": "b", "path": "b"}]}}
    resolution = await resolve(volume, source)
    assert [f.path for f in resolution.pod.volumes["v"].files] == ["a"]
    assert [e.reason for e in resolution.events] == ["OptionalSecretKeyNotFound"]


async def test_downward_api_labels_file() -> None:
    """A downwardAPI labels file holds sorted `key="value"` lines; annotations are quoted like Go."""
    volume = {"name": "v", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}, "mode": 0o400}]}}
    files = await files_of(volume)
    assert files["labels"] == VolumeFile("labels", b'app="web"\ntier="front"', 0o644)
    assert files["annotations"] == VolumeFile("annotations", b'note="say \\"hi\\"\\n"', 0o400)


async def test_downward_api_resource_file() -> None:
    """A downwardAPI resourceFieldRef item reads the named container's resources."""
    pod = make_pod(container(resources={"limits": {"memory": "128Mi"}}), volumes=[{"name": "v", "downwardAPI": {
        "items": [{"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory",
                                                        "divisor": "1Mi"}}]}}])
    resolution = await resolve_pod(pod, FakeSource(), node_name="vnode-1", host_ip="10.0.0.5")
    assert resolution.pod.volumes["v"].files == (VolumeFile("mem", b"128", 0o644),)


async def test_downward_api_resource_needs_container_name() -> None:
    """A volume resourceFieldRef without containerName raises InvalidPod naming the field."""
    volume = {"name": "v", "downwardAPI": {"items": [{"path": "cpu", "resourceFieldRef": {"resource": "limits.cpu"}}]}}
    with pytest.raises(InvalidPod) as caught:
        await resolve(volume)
    assert caught.value.field == "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName"


async def test_projected_sources_merge_with_default_mode() -> None:
    """A projected volume gathers its sources into one set of files, all with its defaultMode."""
    source = cfg_source().add_secret("s", {"pw": "p"})
    volume = {"name": "v", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "app.conf"}]}},
        {"secret": {"name": "s"}},
        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}
    files = await files_of(volume, source)
    assert {p: (f.content, f.mode) for p, f in files.items()} == {
        "app.conf": (b"x=1", 0o440), "pw": (b"p", 0o440), "name": (b"p", 0o440)}


async def test_projected_token_path_mode_and_request() -> None:
    """A serviceAccountToken source asks for a token bound to the pod and writes it at its path with defaultMode."""
    source = FakeSource()
    volume = {"name": "v", "projected": {"defaultMode": 0o644, "sources": [{"serviceAccountToken": {
        "path": "vault/token", "audience": "vault", "expirationSeconds": 7200}}]}}
    files = await files_of(volume, source)
    assert files == {"vault/token": VolumeFile("vault/token", b"token-builder-1", 0o644)}
    request = source.token_requests[0]
    assert (request.namespace, request.service_account, request.audience, request.expiration_seconds,
            request.pod) == ("ns", "builder", "vault", 7200, PodRef("ns", "p", "uid-1"))


async def test_token_expiration_defaults_to_an_hour() -> None:
    """expirationSeconds defaults to 3600 and an empty audience means the API server's default."""
    source = FakeSource()
    await resolve({"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}, source)
    assert (source.token_requests[0].expiration_seconds, source.token_requests[0].audience) == (3600, None)


async def test_token_expiration_under_ten_minutes_is_invalid() -> None:
    """expirationSeconds below 600 raises InvalidPod naming the field."""
    volume = {"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 599}}]}}
    with pytest.raises(InvalidPod) as caught:
        await resolve(volume)
    assert caught.value.field == "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"


async def test_token_is_private_with_fs_group() -> None:
    """With an fsGroup the token is written 0600 and given group read (0640), like SetVolumeOwnership does."""
    volume = {"name": "v", "projected": {"defaultMode": 0o644, "sources": [{"serviceAccountToken": {"path": "t"}}]}}
    files = await files_of(volume, securityContext={"fsGroup": 2000})
    assert files["t"].mode == 0o640


async def test_token_is_private_with_a_common_run_as_user() -> None:
    """When every container runs as the same user the token is written 0600 for that user."""
    volume = {"name": "v", "projected": {"defaultMode": 0o644, "sources": [{"serviceAccountToken": {"path": "t"}}]}}
    files = await files_of(volume, securityContext={"runAsUser": 1000})
    assert files["t"].mode == 0o600


async def test_fs_group_adds_read_for_owner_and_group() -> None:
    """With an fsGroup every projected file gains r--r----- (0440), as the kubelet's ownership change does."""
    volume = {"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400}}
    files = await files_of(volume, cfg_source(), securityContext={"fsGroup": 2000})
    assert {f.mode for f in files.values()} == {0o440}


async def test_unsupported_projection_is_not_supported() -> None:
    """A clusterTrustBundle projection raises NotSupported."""
    volume = {"name": "v", "projected": {"sources": [{"clusterTrustBundle": {"name": "b", "path": "ca.pem"}}]}}
    with pytest.raises(NotSupported):
        await resolve(volume)


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape", "a/../../b", "..hidden", "", "."])
async def test_unsafe_item_paths_are_invalid(path: str) -> None:
    """Absolute paths, `..` elements, a leading `..` and empty paths raise InvalidPod naming the item's path."""
    volume = {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": path}]}}
    with pytest.raises(InvalidPod) as caught:
        await resolve(volume, cfg_source())
    assert caught.value.field == "spec.volumes[0].configMap.items[0].path"


async def test_item_paths_are_cleaned() -> None:
    """Redundant `.` elements and slashes are removed from paths."""
    volume = {"name": "v", "configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "./conf//app.conf"}]}}
    assert list(await files_of(volume, cfg_source())) == ["conf/app.conf"]


async def test_mode_out_of_range_is_invalid() -> None:
    """A mode above 0777 raises InvalidPod naming the field."""
    volume = {"name": "v", "secret": {"secretName": "s", "defaultMode": 0o1777}}
    with pytest.raises(InvalidPod) as caught:
        await resolve(volume, FakeSource().add_secret("s", {"a": "1"}))
    assert caught.value.field == "spec.volumes[0].secret.defaultMode"


async def test_empty_dir() -> None:
    """emptyDir keeps its medium and size limit."""
    resolved = (await resolve({"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})).pod.volumes["v"]
    assert resolved == ResolvedVolume("v", "emptyDir", medium="Memory", size_limit="64Mi")


async def test_plain_empty_dir() -> None:
    """An emptyDir with no settings has the default medium and no limit."""
    assert (await resolve({"name": "v", "emptyDir": {}})).pod.volumes["v"] == ResolvedVolume("v", "emptyDir")


@pytest.mark.parametrize("volume", [
    {"name": "v", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
    {"name": "v", "persistentVolumeClaim": {"claimName": "cache"}},
    {"name": "v", "nfs": {"server": "nfs", "path": "/export"}},
    {"name": "v", "csi": {"driver": "secrets-store.csi.k8s.io"}},
])
async def test_other_sources_pass_through(volume: dict[str, Any]) -> None:
    """Every other volume source is handed over as written, for the provider to accept or refuse."""
    assert (await resolve(volume)).pod.volumes["v"] == ResolvedVolume("v", "other", source=volume)
