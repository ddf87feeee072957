"""Pod volumes as CreateContainerGroup `Volume.N` parameters, and a container's mounts as `VolumeMount.M`.

emptyDir → EmptyDirVolume; nfs → NFSVolume; configMap, secret, projected and downwardAPI (already materialised as
files by the PodController) → ConfigFileVolume with base64 contents. Everything ECI cannot mount on a virtual node
(hostPath, persistentVolumeClaim, csi, ephemeral…) is an `InvalidPod` naming the volume. Pure; must never log or
put file contents in an error message.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from vnode.errors import InvalidPod
from vnode.providers.base import ResolvedPod, ResolvedVolume
from vnode.util.quantity import parse_quantity

Obj = dict[str, Any]
# "Mount a ConfigFile volume" (ECI user guide): one file at most 32 KB, a volume's files at most 60 KB in all.
MAX_FILE_BYTES, MAX_VOLUME_BYTES = 32 * 1024, 60 * 1024
# Ours, not ECI's: the SDK sends every parameter in the request URL, base64 grows contents by a third, and the
# gateway's URL limit is not published [unverified]; past this the pod is refused rather than the request.
MAX_POD_FILE_BYTES = 128 * 1024
MAX_VOLUMES = 20  # per instance (ECI limits)
_REFUSED = {
    "hostPath": "ECI does not mount host paths; use an emptyDir",
    "persistentVolumeClaim": "ECI does not attach PersistentVolumeClaims on a virtual node; use nfs",
}


def group_volumes(pod: ResolvedPod) -> list[Obj]:
    """`Volume.N` for every volume of the pod, in spec order."""
    specs = pod.spec.get("volumes") or []
    if len(specs) > MAX_VOLUMES:
        raise InvalidPod(f"ECI mounts at most {MAX_VOLUMES} volumes per pod; this pod has {len(specs)}",
                         field="spec.volumes")
    out: list[Obj] = []
    total = 0
    for index, volume in enumerate(specs):
        name, where = volume["name"], f"spec.volumes[{index}]"
        resolved = pod.volumes.get(name) or _unresolved(volume)
        if resolved.kind == "emptyDir":
            out.append(_empty_dir(resolved, where))
        elif resolved.kind == "files" and resolved.files:
            out.append(_config_files(resolved, where))
            total += sum(len(f.content) for f in resolved.files)
        elif resolved.kind == "files":
            # Every optional source was missing: the kubelet still mounts an empty (read-only) directory.
            out.append({"Name": name, "Type": "EmptyDirVolume"})
        else:
            out.append(_other(name, resolved.source or volume, where))
    if total > MAX_POD_FILE_BYTES:
        raise InvalidPod(f"the pod's configMap, secret, projected and downwardAPI volumes hold {total} bytes; vnode "
                         f"sends at most {MAX_POD_FILE_BYTES // 1024} KiB of files to ECI per pod",
                         field="spec.volumes")
    return out


def volume_mounts(pod: ResolvedPod, container: Mapping[str, Any], where: str,
                  expand: Callable[[str], str]) -> list[Obj]:
    """`VolumeMount.M` of one container; `expand` resolves `$(VAR)` in subPathExpr as the kubelet does."""
    kinds = {v["name"]: _kind(pod, v) for v in pod.spec.get("volumes") or []}
    out: list[Obj] = []
    for index, mount in enumerate(container.get("volumeMounts") or []):
        field = f"{where}.volumeMounts[{index}]"
        name = mount.get("name", "")
        if name not in kinds:
            raise InvalidPod(f"volume {name!r} is not defined in spec.volumes", field=f"{field}.name")
        sub_path = str(mount.get("subPath") or "")
        if mount.get("subPathExpr"):
            sub_path = expand(str(mount["subPathExpr"]))
            if sub_path.startswith("/") or ".." in sub_path.split("/"):
                raise InvalidPod(f"subPathExpr expands to {sub_path!r}, which is not a relative path inside the "
                                 "volume", field=f"{field}.subPathExpr")
        # The kubelet mounts configMap, secret, projected and downwardAPI volumes read-only. mountPropagation is
        # left out: with no host volumes on ECI there is nothing to propagate.
        read_only = bool(mount.get("readOnly")) or kinds[name] == "files"
        entry: Obj = {"Name": name, "MountPath": mount.get("mountPath", ""), "ReadOnly": _wire(read_only)}
        if sub_path:
            entry["SubPath"] = sub_path
        out.append(entry)
    return out


def _kind(pod: ResolvedPod, volume: Mapping[str, Any]) -> str:
    resolved = pod.volumes.get(volume["name"])
    return resolved.kind if resolved is not None else _unresolved(volume).kind


def _unresolved(volume: Mapping[str, Any]) -> ResolvedVolume:
    if "emptyDir" in volume:
        source = volume["emptyDir"] or {}
        size = source.get("sizeLimit")
        return ResolvedVolume(volume["name"], "emptyDir", medium=source.get("medium") or "",
                              size_limit=None if size is None else str(size))
    return ResolvedVolume(volume["name"], "other", source=volume)


def _wire(value: bool) -> str:
    return "true" if value else "false"


def _empty_dir(volume: ResolvedVolume, where: str) -> Obj:
    source: Obj = {}
    if volume.medium == "Memory":
        source["Medium"] = "Memory"  # tmpfs, counted against the group's memory
    elif volume.medium:
        raise InvalidPod(f"ECI has no {volume.medium} emptyDir medium", field=f"{where}.emptyDir.medium")
    if volume.size_limit is not None:
        try:
            parse_quantity(volume.size_limit)
        except ValueError as exc:
            raise InvalidPod(str(exc), field=f"{where}.emptyDir.sizeLimit") from exc
        source["SizeLimit"] = volume.size_limit  # a Kubernetes quantity, as ECI's emptyDir takes it [unverified]
    out: Obj = {"Name": volume.name, "Type": "EmptyDirVolume"}
    if source:
        out["EmptyDirVolume"] = source
    return out


def _config_files(volume: ResolvedVolume, where: str) -> Obj:
    for file in volume.files:
        if len(file.content) > MAX_FILE_BYTES:
            raise InvalidPod(f"volume {volume.name!r}: file {file.path!r} is {len(file.content)} bytes; ECI takes "
                             f"configuration files of at most {MAX_FILE_BYTES // 1024} KB", field=where)
    size = sum(len(f.content) for f in volume.files)
    if size > MAX_VOLUME_BYTES:
        raise InvalidPod(f"volume {volume.name!r} holds {size} bytes of files; ECI takes at most "
                         f"{MAX_VOLUME_BYTES // 1024} KB per configuration volume", field=where)
    # Mode as the Kubernetes API writes it (decimal of the octal mode: 0644 → 420) [unverified for ECI].
    paths = [{"Path": f.path, "Content": base64.b64encode(f.content).decode("ascii"), "Mode": f.mode}
             for f in volume.files]
    return {"Name": volume.name, "Type": "ConfigFileVolume", "ConfigFileVolume": {"ConfigFileToPath": paths}}


def _other(name: str, source: Mapping[str, Any], where: str) -> Obj:
    if (nfs := source.get("nfs")) is not None:
        path = posixpath.normpath(str(nfs.get("path") or "/"))
        return {"Name": name, "Type": "NFSVolume",
                "NFSVolume": {"Server": nfs.get("server", ""), "Path": path,
                              "ReadOnly": _wire(bool(nfs.get("readOnly")))}}
    kind = next((key for key in source if key != "name"), "")
    if not kind:
        raise InvalidPod(f"volume {name!r} names no source", field=where)
    reason = _REFUSED.get(kind, f"ECI cannot mount {kind} volumes on a virtual node")
    raise InvalidPod(f"volume {name!r}: {reason}", field=f"{where}.{kind}")
