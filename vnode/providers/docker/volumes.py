"""Per-pod volume directories on the engine's host, bind-mounted into the pod's containers.

Owns `<volumes_dir>/<pod uid>/<volume>`: emptyDir directories (shared by the pod's containers), the files of
configMap/secret/projected/downwardAPI volumes written with their modes, subPath directories, and hostPath volumes
when the operator allows them. Blocking filesystem calls: async callers run these in a thread. Never logs file
contents (secrets).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vnode.config import DockerProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import ResolvedPod, ResolvedVolume
from vnode.providers.docker.spec import sub_path_of

# The kubelet creates emptyDir directories world-writable, so containers running as any user can share them.
_EMPTY_DIR_MODE = 0o777
_HOST_PATH_CHECKS = {"Directory": Path.is_dir, "File": Path.is_file, "Socket": Path.is_socket,
                     "CharDevice": Path.is_char_device, "BlockDevice": Path.is_block_device}


def root(settings: DockerProviderSettings) -> Path:
    return settings.volumes_dir.absolute()


def pod_dir(settings: DockerProviderSettings, uid: str) -> Path:
    if not uid or "/" in uid or uid in (".", ".."):
        raise InvalidPod(f"pod UID {uid!r} cannot name a directory", field="metadata.uid")
    return root(settings) / uid


def check(pod: ResolvedPod, settings: DockerProviderSettings) -> None:
    """Refuse volumes this provider cannot provide, before anything is written."""
    for index, volume in enumerate(pod.spec.get("volumes") or []):
        resolved = pod.volumes.get(volume.get("name", ""))
        if resolved is None or resolved.kind != "other":
            continue
        where = f"spec.volumes[{index}]"
        if "hostPath" in volume:
            if not settings.allow_host_path:
                raise InvalidPod("hostPath volumes are not allowed on this node (provider.allow_host_path)",
                                 field=f"{where}.hostPath")
            kind = (volume["hostPath"] or {}).get("type") or ""
            if kind not in ("", "DirectoryOrCreate", "FileOrCreate", *_HOST_PATH_CHECKS):
                raise InvalidPod(f"unknown hostPath type {kind!r}", field=f"{where}.hostPath.type")
            continue
        source = next((k for k in volume if k != "name"), "source")
        raise InvalidPod(f"{source} volumes are not supported by the Docker provider", field=f"{where}.{source}")


def prepare(pod: ResolvedPod, settings: DockerProviderSettings) -> dict[str, str]:
    """Create the pod's volumes; return each volume's host path by name."""
    check(pod, settings)
    base = pod_dir(settings, pod.ref.uid)
    fs_group = (pod.spec.get("securityContext") or {}).get("fsGroup")
    paths: dict[str, str] = {}
    for name, volume in pod.volumes.items():
        if volume.kind == "other":
            paths[name] = _host_path(volume.source, name)
            continue
        target = base / name
        target.mkdir(parents=True, exist_ok=True)
        if volume.kind == "emptyDir":
            target.chmod(_EMPTY_DIR_MODE)
        else:
            write_files(target, volume)
        if fs_group is not None:
            give_to_group(target, int(fs_group))
        paths[name] = str(target)
    _sub_paths(pod, paths)
    return paths


def write_files(target: Path, volume: ResolvedVolume) -> None:
    for item in volume.files:
        path = target / item.path
        if target not in path.resolve().parents:
            raise InvalidPod(f"volume {volume.name}: file path {item.path!r} leaves the volume")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written, then given its mode: the file may be read-only for its owner.
        if path.exists():
            path.chmod(0o600)
        path.write_bytes(item.content)
        path.chmod(item.mode)


def give_to_group(target: Path, gid: int) -> None:
    """The kubelet's SetVolumeOwnership for fsGroup: everything owned by the group (modes were already given by the
    resolver, 0440 or wider for files), directories setgid so new files join the group too."""
    for path in (target, *target.rglob("*")):
        os.chown(path, -1, gid, follow_symlinks=False)
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o2000)


def remove(settings: DockerProviderSettings, uid: str) -> None:
    """Remove the pod's volume directories (hostPath volumes are the host's and stay)."""
    base = pod_dir(settings, uid)
    if base.exists():
        shutil.rmtree(base, onerror=_make_writable)


def _make_writable(function: Any, path: str, _info: Any) -> None:
    os.chmod(os.path.dirname(path), 0o700)
    function(path)


def _host_path(source: Mapping[str, Any], name: str) -> str:
    spec = source.get("hostPath") or {}
    path = Path(str(spec.get("path") or ""))
    kind = spec.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind and not _HOST_PATH_CHECKS[kind](path):
        raise InvalidPod(f"hostPath {path} of volume {name} is not a {kind}")
    return str(path)


def _sub_paths(pod: ResolvedPod, paths: Mapping[str, str]) -> None:
    """The kubelet creates a missing subPath as a directory inside writable volumes."""
    for list_name in ("initContainers", "containers"):
        for index, container in enumerate(pod.spec.get(list_name) or []):
            for mount_index, mount in enumerate(container.get("volumeMounts") or []):
                field = f"spec.{list_name}[{index}].volumeMounts[{mount_index}]"
                sub_path = sub_path_of(mount, field)
                volume = pod.volumes.get(mount.get("name", ""))
                if sub_path and volume is not None and volume.kind != "files" and volume.name in paths:
                    Path(paths[volume.name], sub_path).mkdir(parents=True, exist_ok=True)
