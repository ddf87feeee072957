"""Which imagePullSecrets credential applies to an image, by registry host, as the kubelet's keyring matches them.

Pure functions shared by every provider that pulls images (Docker, ECI's ImageRegistryCredential).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from vnode.providers.base import RegistryAuth

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def image_registry(image: str) -> str:
    """The registry host of an image reference: its first path component when that names a host (contains a dot or
    a port, or is localhost), else Docker Hub."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def _host(key: str) -> str:
    # Docker config keys may be bare hosts or URLs ("https://index.docker.io/v1/").
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    host = host.lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


def auth_for_image(image: str, auths: Sequence[RegistryAuth]) -> RegistryAuth | None:
    """The first credential whose registry is the image's (secrets are tried in the pod's order)."""
    wanted = image_registry(image)
    for auth in auths:
        if _host(auth.registry) == wanted:
            return auth
    return None
