"""The kubelet's work between "pod bound to this node" and "hand it to the runtime": env and volume contents.

Owns `resolve_pod` and its `Resolution`; `env.py` and `volumes.py` do the work. Must not reach the API except through
the injected `ObjectSource`, and must never log what it resolves (Secret values and tokens among it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vnode.pods.env import MissingReference, ObjectSource, PodContext, References, resolve_env
from vnode.pods.pullsecrets import resolve_pull_secrets
from vnode.pods.volumes import resolve_volumes
from vnode.providers.base import PodRef, ProviderEvent, ResolvedPod

__all__ = ["MissingReference", "ObjectSource", "Resolution", "resolve_pod"]


@dataclass(frozen=True)
class Resolution:
    pod: ResolvedPod
    events: tuple[ProviderEvent, ...]  # Warning events to record on the pod (optional references that are absent...)


async def resolve_pod(pod: Mapping[str, Any], source: ObjectSource, *, node_name: str, host_ip: str,
                      pod_ip: str = "", allocatable: Mapping[str, str] | None = None) -> Resolution:
    """Resolve every container's env and every volume's contents.

    Raises MissingReference (retryable) for an absent mandatory ConfigMap, Secret or key, InvalidPod for a reference
    that can never resolve, NotSupported for a source vnode cannot provide. `allocatable` stands in for unset limits
    in resourceFieldRefs, as node allocatable does in the kubelet.
    """
    # The runtime's IP wins; the stored status may have one from an earlier sync.
    status = pod.get("status") or {}
    ctx = PodContext(pod, node_name=node_name, host_ip=host_ip, pod_ip=pod_ip or status.get("podIP") or "",
                     allocatable=allocatable or {})
    refs = References(source, ctx.meta.get("namespace") or "")
    # The kubelet mounts volumes before it builds any container's environment.
    volumes = await resolve_volumes(ctx, refs)
    env = await resolve_env(ctx, refs)
    auths = await resolve_pull_secrets(pod.get("spec") or {}, refs)
    resolved = ResolvedPod(PodRef.of(pod), pod, env=env, volumes=volumes, registry_auth=auths)
    return Resolution(resolved, tuple(refs.events))
