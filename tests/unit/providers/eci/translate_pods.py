"""Pods for the translate tests, and the wire form (flattened query parameters) of their create requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vnode.config import EciProviderSettings
from vnode.providers.base import EnvVar, PodRef, RegistryAuth, ResolvedPod, ResolvedVolume
from vnode.providers.eci.client import flatten
from vnode.providers.eci.translate import CreatePlan, plan_create

SETTINGS = EciProviderSettings(cluster_name="c1", security_group_id="sg-1", vswitch_ids=("vsw-1",))
REF = PodRef("ns", "pod", "uid-1")
NODE = "node-1"


def container(name: str = "main", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "registry.example.com/team/img:1", **fields}


def pod(*containers: dict[str, Any], init: Sequence[dict[str, Any]] = (), annotations: Mapping[str, str] | None = None,
        env: Mapping[str, tuple[EnvVar, ...]] | None = None, volumes: Sequence[ResolvedVolume] = (),
        registry_auth: tuple[RegistryAuth, ...] = (), ref: PodRef = REF, **spec: Any) -> ResolvedPod:
    body = {"metadata": {"namespace": ref.namespace, "name": ref.name, "uid": ref.uid,
                         "annotations": dict(annotations or {})},
            "spec": {"containers": list(containers) or [container()], "initContainers": list(init),
                     "volumes": [{"name": v.name, **_source(v)} for v in volumes], **spec}}
    return ResolvedPod(ref, body, env=dict(env or {}), volumes={v.name: v for v in volumes},
                       registry_auth=registry_auth)


def _source(volume: ResolvedVolume) -> Mapping[str, Any]:
    if volume.kind == "emptyDir":
        return {"emptyDir": {}}
    if volume.kind == "files":
        return {"projected": {"sources": []}}
    return {k: v for k, v in volume.source.items() if k != "name"}


def plan(resolved: ResolvedPod, settings: EciProviderSettings = SETTINGS) -> CreatePlan:
    return plan_create(resolved, settings, node_name=NODE)


def wire(resolved: ResolvedPod, settings: EciProviderSettings = SETTINGS, *, shape: int = 0,
         spot: bool = False) -> dict[str, str]:
    """The query parameters the client sends for one attempt."""
    created = plan(resolved, settings)
    return flatten(created.attempt_params(created.shapes[shape], spot=spot))


def under(query: Mapping[str, str], prefix: str) -> dict[str, str]:
    """The parameters below `prefix` (e.g. `Container.1.`), keys relative to it."""
    return {k[len(prefix):]: v for k, v in query.items() if k.startswith(prefix)}
