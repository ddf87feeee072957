"""The pod's imagePullSecrets as registry credentials (kubernetes.io/dockerconfigjson and the older dockercfg).

A missing or unreadable pull secret is not fatal, as in the kubelet: the pull is tried without it and the pod gets a
Warning event. Must never log credentials.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from vnode.pods.env import References
from vnode.providers.base import RegistryAuth

_CONFIG_KEYS = (".dockerconfigjson", ".dockercfg")


def _decode(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _entries(secret: Mapping[str, Any]) -> Mapping[str, Any] | None:
    data = secret.get("data") or {}
    for key in _CONFIG_KEYS:
        if key in data:
            raw = _decode(data[key])
            try:
                config = json.loads(raw) if raw is not None else None
            except ValueError:
                return None
            if not isinstance(config, dict):
                return None
            # dockerconfigjson nests the entries under "auths"; dockercfg is the entries themselves.
            entries = config.get("auths", config) if key == ".dockerconfigjson" else config
            return entries if isinstance(entries, dict) else None
    return None


def _credential(registry: str, entry: Any) -> RegistryAuth | None:
    if not isinstance(entry, dict):
        return None
    username, password = entry.get("username") or "", entry.get("password") or ""
    if not username and entry.get("auth"):
        decoded = _decode(entry["auth"])
        if decoded is not None:
            username, _, password = decoded.decode(errors="replace").partition(":")
    return RegistryAuth(registry, username, password) if username else None


async def resolve_pull_secrets(spec: Mapping[str, Any], refs: References) -> tuple[RegistryAuth, ...]:
    found: list[RegistryAuth] = []
    failed: list[str] = []
    for ref in spec.get("imagePullSecrets") or []:
        name = ref.get("name") or ""
        secret = await refs.source.get_secret(refs.namespace, name) if name else None
        entries = _entries(secret) if secret is not None else None
        if entries is None:
            failed.append(name)
            continue
        found.extend(auth for registry, entry in entries.items() if (auth := _credential(registry, entry)))
    if failed:
        refs.warn("FailedToRetrieveImagePullSecret", f"Unable to retrieve some image pull secrets "
                  f"({', '.join(failed)}); attempting to pull the image may not succeed.")
    return tuple(found)
