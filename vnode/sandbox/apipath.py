"""Parsing of resource URLs: `/api/v1/...` and `/apis/{group}/{version}/...` into what they address.

Shared by the REST handlers and the raw upgrade path, so both resolve a URL the same way. Knows nothing of
storage or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from vnode.sandbox.resources import ResourceRegistry, ResourceType


@dataclass(frozen=True)
class ApiPath:
    rtype: ResourceType
    namespace: str | None  # None: cluster-scoped, or a namespaced collection across all namespaces
    name: str | None
    subresource: str | None
    rest: str  # anything after the subresource (nodes/{n}/proxy/{rest})


def parse_api_path(path: str, resources: ResourceRegistry) -> ApiPath | None:
    """Resolve `path`; None when it names no served resource."""
    parts = path.lstrip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        group, version, segments = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, segments = parts[1], parts[2], parts[3:]
    else:
        return None
    if not segments or not segments[0]:
        return None
    namespace: str | None = None
    # `/namespaces/{ns}/{resource}` addresses namespaced content; `/namespaces/{ns}` and
    # `/namespaces/{ns}/status|finalize` address the Namespace object itself.
    if segments[0] == "namespaces" and len(segments) >= 3:
        candidate = resources.lookup(group, version, segments[2])
        if candidate is not None and candidate.namespaced:
            namespace, segments = segments[1], segments[2:]
    rtype = resources.lookup(group, version, segments[0])
    if rtype is None:
        return None
    name = segments[1] if len(segments) > 1 and segments[1] else None
    subresource = segments[2] if len(segments) > 2 and segments[2] else None
    # Kept verbatim, trailing slash included: the kubelet serves `/runningpods/`, not `/runningpods`.
    rest = "/".join(segments[3:])
    if subresource is not None and subresource not in rtype.subresources:
        return None
    if name is None and len(segments) > 2:
        return None
    if rest and subresource != "proxy":
        return None
    return ApiPath(rtype, namespace, name, subresource, rest)
