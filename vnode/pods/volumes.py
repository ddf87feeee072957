"""Pod volumes resolved to what a backend must provide, as the kubelet's volume plugins would lay them out.

Owns configMap, secret, downwardAPI and projected volumes (files with the plugins' paths and modes), emptyDir, and
passing every other source through untouched for the provider to judge. Must do no I/O except through
`ObjectSource`, and must never log file contents.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from vnode.errors import InvalidPod, NotSupported
from vnode.pods.env import Kind, PodContext, References, field_value, resource_value
from vnode.providers.base import PodRef, ResolvedVolume, VolumeFile

# API defaulting of defaultMode for configMap, secret, downwardAPI and projected volumes.
_DEFAULT_MODE = 0o644
# serviceAccountToken.expirationSeconds: defaulted to one hour; validation allows 10 minutes to 2^32 seconds.
_TOKEN_EXPIRATION, _TOKEN_MIN, _TOKEN_MAX = 3600, 600, 2**32
# The kubelet's AtomicWriter limits.
_MAX_PATH, _MAX_FILE_NAME = 4096, 255


async def resolve_volumes(ctx: PodContext, refs: References) -> dict[str, ResolvedVolume]:
    """Every volume of the pod, by name (the kubelet sets up all of them, mounted or not)."""
    volumes: dict[str, ResolvedVolume] = {}
    for index, volume in enumerate(ctx.spec.get("volumes") or []):
        name, where = volume["name"], f"spec.volumes[{index}]"
        if "emptyDir" in volume:
            source = volume["emptyDir"] or {}
            size = source.get("sizeLimit")
            volumes[name] = ResolvedVolume(name, "emptyDir", medium=source.get("medium") or "",
                                           size_limit=None if size is None else str(size))
        elif (payload := await _files(ctx, refs, volume, where)) is not None:
            volumes[name] = ResolvedVolume(name, "files", files=tuple(payload.files.values()))
        else:
            volumes[name] = ResolvedVolume(name, "other", source=volume)
    return volumes


class _Payload:
    """The files of one volume by cleaned path (a later source overwrites an earlier one, as in the kubelet)."""

    def __init__(self, fs_group: int | None) -> None:
        self.files: dict[str, VolumeFile] = {}
        self._fs_group = fs_group

    def add(self, path: str, content: bytes, mode: int, where: str) -> None:
        clean = _clean_path(path, where)
        if self._fs_group is not None:
            # SetVolumeOwnership gives these read-only volumes to the fsGroup and ORs in r--r----- (0440).
            mode |= 0o440
        self.files[clean] = VolumeFile(clean, content, mode)


async def _files(ctx: PodContext, refs: References, volume: Mapping[str, Any], where: str) -> _Payload | None:
    name = volume["name"]
    payload = _Payload((ctx.spec.get("securityContext") or {}).get("fsGroup"))
    if (source := volume.get("configMap")) is not None:
        mode = _mode(source.get("defaultMode"), _DEFAULT_MODE, f"{where}.configMap.defaultMode")
        await _object_files(refs, payload, "configmap", source, source.get("name", ""), mode, name,
                            f"{where}.configMap")
    elif (source := volume.get("secret")) is not None:
        mode = _mode(source.get("defaultMode"), _DEFAULT_MODE, f"{where}.secret.defaultMode")
        await _object_files(refs, payload, "secret", source, source.get("secretName", ""), mode, name,
                            f"{where}.secret")
    elif (source := volume.get("downwardAPI")) is not None:
        mode = _mode(source.get("defaultMode"), _DEFAULT_MODE, f"{where}.downwardAPI.defaultMode")
        _downward_files(ctx, payload, source, mode, f"{where}.downwardAPI")
    elif (source := volume.get("projected")) is not None:
        mode = _mode(source.get("defaultMode"), _DEFAULT_MODE, f"{where}.projected.defaultMode")
        for index, projection in enumerate(source.get("sources") or []):
            await _projection(ctx, refs, payload, projection, mode, name, f"{where}.projected.sources[{index}]")
    else:
        return None
    return payload


async def _projection(ctx: PodContext, refs: References, payload: _Payload, projection: Mapping[str, Any],
                      mode: int, volume: str, where: str) -> None:
    if (source := projection.get("configMap")) is not None:
        await _object_files(refs, payload, "configmap", source, source.get("name", ""), mode, volume,
                            f"{where}.configMap")
    elif (source := projection.get("secret")) is not None:
        await _object_files(refs, payload, "secret", source, source.get("name", ""), mode, volume, f"{where}.secret")
    elif (source := projection.get("downwardAPI")) is not None:
        _downward_files(ctx, payload, source, mode, f"{where}.downwardAPI")
    elif (source := projection.get("serviceAccountToken")) is not None:
        await _token(ctx, refs, payload, source, mode, f"{where}.serviceAccountToken")
    else:
        kinds = ", ".join(sorted(projection)) or "nothing"
        # clusterTrustBundle and podCertificate need API objects the ObjectSource does not offer.
        raise NotSupported(f"{where}: projected volume sources of kind {kinds} are not supported")


async def _object_files(refs: References, payload: _Payload, kind: Kind, source: Mapping[str, Any], name: str,
                        default_mode: int, volume: str, where: str) -> None:
    """configmap/secret MakePayload: every key by its own name, or only `items` (key → path, per-item mode)."""
    optional = bool(source.get("optional"))
    skipping = f'skipping optional volume "{volume}": '
    # An absent optional object gives an empty volume.
    if (found := await refs.require(kind, name, optional=optional, skipping=skipping)) is None:
        return
    items = source.get("items") or []
    if not items:
        for key, content in found.files.items():
            payload.add(key, content, default_mode, where)
    for index, item in enumerate(items):
        key = item.get("key", "")
        if key not in found.files:
            refs.key_missing(kind, name, key, optional=optional, skipping=skipping)
            continue
        item_where = f"{where}.items[{index}]"
        payload.add(item.get("path", ""), found.files[key], _mode(item.get("mode"), default_mode,
                                                                  f"{item_where}.mode"), f"{item_where}.path")


def _downward_files(ctx: PodContext, payload: _Payload, source: Mapping[str, Any], default_mode: int,
                    where: str) -> None:
    """downwardapi CollectData: one file per item; labels and annotations as sorted `key="value"` lines."""
    for index, item in enumerate(source.get("items") or []):
        item_where = f"{where}.items[{index}]"
        value = ""
        if (selector := item.get("fieldRef")) is not None:
            value = field_value(ctx, selector, f"{item_where}.fieldRef")
        elif (selector := item.get("resourceFieldRef")) is not None:
            value = resource_value(ctx, selector, None, f"{item_where}.resourceFieldRef")
        mode = _mode(item.get("mode"), default_mode, f"{item_where}.mode")
        payload.add(item.get("path", ""), value.encode(), mode, f"{item_where}.path")


async def _token(ctx: PodContext, refs: References, payload: _Payload, source: Mapping[str, Any],
                 default_mode: int, where: str) -> None:
    expiration = source.get("expirationSeconds")
    expiration = _TOKEN_EXPIRATION if expiration is None else expiration
    if not isinstance(expiration, int) or not _TOKEN_MIN <= expiration <= _TOKEN_MAX:
        raise InvalidPod(f"must be between {_TOKEN_MIN} and {_TOKEN_MAX} seconds, not {expiration!r}",
                         field=f"{where}.expirationSeconds")
    spec = ctx.spec
    # The ServiceAccount admission always sets serviceAccountName; "default" is what it would set.
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    token = await refs.source.service_account_token(refs.namespace, account, audience=source.get("audience") or None,
                                                    expiration_seconds=expiration, pod=PodRef.of(ctx.pod))
    # With an fsUser or fsGroup the plugin writes the token 0600 (owned by fsUser) and relies on ownership for access.
    private = _fs_user(spec) is not None or (spec.get("securityContext") or {}).get("fsGroup") is not None
    payload.add(source.get("path", ""), token.encode(), 0o600 if private else default_mode, f"{where}.path")


def _fs_user(spec: Mapping[str, Any]) -> int | None:
    """volume/util FsUserFrom: the runAsUser shared by every init and app container, if they all have the same."""
    pod_user = (spec.get("securityContext") or {}).get("runAsUser")
    users = {(c.get("securityContext") or {}).get("runAsUser", pod_user)
             for list_name in ("initContainers", "containers") for c in spec.get(list_name) or []}
    if len(users) != 1:
        return None
    user: int | None = users.pop()
    return user


def _mode(value: Any, default: int, where: str) -> int:
    if value is None:
        return default
    # Validation: a number between 0 and 0777 (octal).
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0o777:
        raise InvalidPod(f"must be a number between 0 and 0777 (octal), not {value!r}", field=where)
    return value


def _clean_path(path: str, where: str) -> str:
    """AtomicWriter validatePath, then filepath.Clean: relative, no `..` element, no leading `..`."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\0" in path:
        problem = "must be a non-empty relative path"
    elif ".." in parts or parts[0].startswith(".."):
        problem = "must not contain '..' or start with '..'"
    elif len(path) > _MAX_PATH or any(len(part) > _MAX_FILE_NAME for part in parts):
        problem = f"must be at most {_MAX_PATH} characters, each file name at most {_MAX_FILE_NAME}"
    elif (clean := posixpath.normpath(path)) == ".":
        problem = "must name a file inside the volume"
    else:
        return clean
    raise InvalidPod(f"invalid path {path!r}: {problem}", field=where)
