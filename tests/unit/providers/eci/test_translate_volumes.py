"""volumes.py through plan_create: each volume kind as Volume.N on the wire, sizes, and what is refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.unit.providers.eci.translate_pods import pod, under, wire
from vnode.errors import InvalidPod
from vnode.providers.base import ResolvedVolume, VolumeFile
from vnode.providers.eci.volumes import MAX_FILE_BYTES, MAX_POD_FILE_BYTES, MAX_VOLUME_BYTES


def volumes(*resolved: ResolvedVolume) -> dict[str, str]:
    return under(wire(pod(volumes=resolved)), "Volume.")


def files(name: str, *sizes: int) -> ResolvedVolume:
    return ResolvedVolume(name, "files", files=tuple(VolumeFile(f"key-{n}", b"x" * size) for n, size in
                                                     enumerate(sizes)))


def test_empty_dir() -> None:
    assert volumes(ResolvedVolume("work", "emptyDir")) == {"1.Name": "work", "1.Type": "EmptyDirVolume"}


def test_memory_empty_dir_with_a_size_limit() -> None:
    sent = volumes(ResolvedVolume("shm", "emptyDir", medium="Memory", size_limit="256Mi"))
    assert (sent["1.EmptyDirVolume.Medium"], sent["1.EmptyDirVolume.SizeLimit"]) == ("Memory", "256Mi")


def test_a_huge_pages_empty_dir_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        volumes(ResolvedVolume("huge", "emptyDir", medium="HugePages-2Mi"))
    assert caught.value.field == "spec.volumes[0].emptyDir.medium"


def test_files_become_a_config_file_volume_with_base64_contents_and_modes() -> None:
    sent = volumes(ResolvedVolume("conf", "files", files=(VolumeFile("app.yaml", b"a: 1\n", 0o644),
                                                          VolumeFile("sub/key", b"\x00\xff", 0o400))))
    assert under(sent, "1.ConfigFileVolume.ConfigFileToPath.") == {
        "1.Path": "app.yaml", "1.Content": base64.b64encode(b"a: 1\n").decode(), "1.Mode": str(0o644),
        "2.Path": "sub/key", "2.Content": "AP8=", "2.Mode": str(0o400)}
    assert sent["1.Type"] == "ConfigFileVolume"


def test_a_files_volume_whose_sources_were_all_missing_is_an_empty_directory() -> None:
    assert volumes(ResolvedVolume("opt", "files")) == {"1.Name": "opt", "1.Type": "EmptyDirVolume"}


def test_a_file_over_32_kib_is_refused_naming_volume_and_key() -> None:
    with pytest.raises(InvalidPod, match="'conf'.*'key-1'") as caught:
        volumes(files("conf", 10, MAX_FILE_BYTES + 1))
    assert caught.value.field == "spec.volumes[0]"


def test_a_volume_over_60_kib_is_refused() -> None:
    with pytest.raises(InvalidPod, match="'conf'") as caught:
        volumes(files("conf", MAX_FILE_BYTES, MAX_FILE_BYTES))  # each within 32 KiB, over 60 KiB together
    assert caught.value.field == "spec.volumes[0]"


def test_a_pod_with_too_many_file_bytes_in_all_is_refused() -> None:
    count = MAX_POD_FILE_BYTES // MAX_VOLUME_BYTES + 1
    with pytest.raises(InvalidPod, match="KiB of files") as caught:
        volumes(*[files(f"v{n}", MAX_FILE_BYTES, MAX_VOLUME_BYTES - MAX_FILE_BYTES) for n in range(count)])
    assert caught.value.field == "spec.volumes"


def test_nfs() -> None:
    sent = volumes(ResolvedVolume("share", "other", source={"name": "share", "nfs": {
        "server": "nas.example.com", "path": "/exports/ci/", "readOnly": True}}))
    assert sent == {"1.Name": "share", "1.Type": "NFSVolume", "1.NFSVolume.Server": "nas.example.com",
                    "1.NFSVolume.Path": "/exports/ci", "1.NFSVolume.ReadOnly": "true"}


@pytest.mark.parametrize(("source", "field"), [
    ({"hostPath": {"path": "/var/run/docker.sock"}}, "hostPath"),
    ({"persistentVolumeClaim": {"claimName": "cache"}}, "persistentVolumeClaim"),
    ({"csi": {"driver": "x"}}, "csi"),
    ({"ephemeral": {"volumeClaimTemplate": {}}}, "ephemeral"),
])
def test_volumes_eci_cannot_mount_are_refused_naming_the_source(source: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPod) as caught:
        volumes(ResolvedVolume("v", "other", source={"name": "v", **source}))
    assert caught.value.field == f"spec.volumes[0].{field}"


def test_more_than_twenty_volumes_are_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        volumes(*[ResolvedVolume(f"v{n}", "emptyDir") for n in range(21)])
    assert caught.value.field == "spec.volumes"
