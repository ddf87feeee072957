"""volumes.py: per-pod volume directories (written under a temporary directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vnode.config import DockerProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import PodRef, ResolvedPod, ResolvedVolume, VolumeFile
from vnode.providers.docker import volumes


def _pod(volume_list: list[dict[str, Any]], resolved: dict[str, ResolvedVolume],
         mounts: list[dict[str, Any]] | None = None) -> ResolvedPod:
    ref = PodRef("ns", "pod", "uid-1")
    spec = {"containers": [{"name": "main", "image": "i", "volumeMounts": mounts or []}], "volumes": volume_list}
    return ResolvedPod(ref, {"metadata": {"uid": ref.uid}, "spec": spec}, volumes=resolved)


def _settings(tmp_path: Path, **extra: Any) -> DockerProviderSettings:
    return DockerProviderSettings(volumes_dir=tmp_path / "vols", **extra)


def test_empty_dir_is_a_world_writable_directory_per_pod(tmp_path: Path) -> None:
    pod = _pod([{"name": "work", "emptyDir": {}}], {"work": ResolvedVolume("work", "emptyDir")})
    paths = volumes.prepare(pod, _settings(tmp_path))
    target = tmp_path / "vols" / "uid-1" / "work"
    assert paths == {"work": str(target)}
    assert target.is_dir() and target.stat().st_mode & 0o777 == 0o777


def test_files_volumes_are_written_with_their_modes(tmp_path: Path) -> None:
    files = (VolumeFile("a.txt", b"A", 0o600), VolumeFile("dir/b.sh", b"B", 0o755))
    pod = _pod([{"name": "conf", "configMap": {"name": "c"}}], {"conf": ResolvedVolume("conf", "files", files)})
    volumes.prepare(pod, _settings(tmp_path))
    base = tmp_path / "vols" / "uid-1" / "conf"
    assert [(base / f.path).read_bytes() for f in files] == [b"A", b"B"]
    assert [(base / f.path).stat().st_mode & 0o777 for f in files] == [0o600, 0o755]


def test_a_file_path_leaving_the_volume_is_refused(tmp_path: Path) -> None:
    pod = _pod([{"name": "conf", "secret": {}}],
               {"conf": ResolvedVolume("conf", "files", (VolumeFile("../escape", b"x"),))})
    with pytest.raises(InvalidPod):
        volumes.prepare(pod, _settings(tmp_path))
    assert not (tmp_path / "vols" / "uid-1" / "escape").exists()


def test_sub_path_directories_are_created_in_the_volume(tmp_path: Path) -> None:
    pod = _pod([{"name": "work", "emptyDir": {}}], {"work": ResolvedVolume("work", "emptyDir")},
               mounts=[{"name": "work", "mountPath": "/w", "subPath": "a/b"}])
    volumes.prepare(pod, _settings(tmp_path))
    assert (tmp_path / "vols" / "uid-1" / "work" / "a" / "b").is_dir()


def test_host_path_is_refused_unless_allowed(tmp_path: Path) -> None:
    volume = {"name": "h", "hostPath": {"path": str(tmp_path / "host")}}
    pod = _pod([volume], {"h": ResolvedVolume("h", "other", source=volume)})
    with pytest.raises(InvalidPod) as caught:
        volumes.prepare(pod, _settings(tmp_path))
    assert caught.value.field == "spec.volumes[0].hostPath"


def test_host_path_directory_or_create_is_created_when_allowed(tmp_path: Path) -> None:
    volume = {"name": "h", "hostPath": {"path": str(tmp_path / "host"), "type": "DirectoryOrCreate"}}
    pod = _pod([volume], {"h": ResolvedVolume("h", "other", source=volume)})
    assert volumes.prepare(pod, _settings(tmp_path, allow_host_path=True)) == {"h": str(tmp_path / "host")}
    assert (tmp_path / "host").is_dir()


def test_other_volume_kinds_are_refused_by_name(tmp_path: Path) -> None:
    volume = {"name": "n", "nfs": {"server": "s", "path": "/"}}
    pod = _pod([volume], {"n": ResolvedVolume("n", "other", source=volume)})
    with pytest.raises(InvalidPod) as caught:
        volumes.check(pod, _settings(tmp_path))
    assert caught.value.field == "spec.volumes[0].nfs"


def test_remove_deletes_the_pods_directory_even_with_read_only_files(tmp_path: Path) -> None:
    files = (VolumeFile("ro/a", b"A", 0o400),)
    pod = _pod([{"name": "c", "secret": {}}], {"c": ResolvedVolume("c", "files", files)})
    settings = _settings(tmp_path)
    volumes.prepare(pod, settings)
    (tmp_path / "vols" / "uid-1" / "c" / "ro").chmod(0o500)
    volumes.remove(settings, "uid-1")
    assert not (tmp_path / "vols" / "uid-1").exists()
