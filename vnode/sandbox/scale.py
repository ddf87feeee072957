"""The `scale` subresource of Deployments: an autoscaling/v1 Scale view of spec.replicas, as `kubectl scale` uses.

A read builds the Scale from the stored Deployment; a write (PUT, or a PATCH applied to the current Scale) is
validated as a Scale and becomes an update of the Deployment's spec.replicas, with the Scale's resourceVersion as
its precondition, through the registry (so dry runs, conflicts, generation and watch events behave as for any
update). Nothing here scales anything: the sandbox runs no Deployment controller.
"""

from __future__ import annotations

import copy
from typing import Any

from vnode.sandbox import field_errors as fe
from vnode.sandbox import status
from vnode.sandbox.apps_strategy import selector_string
from vnode.sandbox.registry import Registry, apply_patch, patch_type_of
from vnode.sandbox.resources import ResourceType
from vnode.sandbox.store import Obj

SCALE_API_VERSION = "autoscaling/v1"


def scale_of(deployment: Obj) -> Obj:
    """scaleFromDeployment: identity metadata, desired replicas, observed replicas and the selector's string."""
    meta, spec, observed = deployment["metadata"], deployment.get("spec") or {}, deployment.get("status") or {}
    selector = spec.get("selector")
    scale: Obj = {
        "kind": "Scale", "apiVersion": SCALE_API_VERSION,
        "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if key in meta},
        # ScaleSpec.replicas is omitempty; ScaleStatus.replicas is not.
        "spec": {"replicas": spec["replicas"]} if spec.get("replicas") else {},
        "status": {"replicas": observed.get("replicas") or 0},
    }
    if text := selector_string(selector if isinstance(selector, dict) else None):
        scale["status"]["selector"] = text
    return scale


class ScaleSubresource:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def _deployment(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        try:
            return self._registry.get(rtype, namespace, name)
        except status.ApiError as exc:
            if exc.code == 404:
                raise status.not_found(f"{rtype.resource}/scale", rtype.group, name) from exc
            raise

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        return scale_of(self._deployment(rtype, namespace, name))

    def update(self, rtype: ResourceType, namespace: str, name: str, body: Any, *, dry_run: bool = False) -> Obj:
        return self._write(rtype, self._deployment(rtype, namespace, name), body, dry_run)

    def patch(self, rtype: ResourceType, namespace: str, name: str, content_type: str, body: Any, *,
              dry_run: bool = False) -> Obj:
        patch_type = patch_type_of(content_type)
        deployment = self._deployment(rtype, namespace, name)
        return self._write(rtype, deployment, apply_patch(scale_of(deployment), patch_type, body, "Scale"), dry_run)

    def _write(self, rtype: ResourceType, deployment: Obj, scale: Any, dry_run: bool) -> Obj:
        meta = deployment["metadata"]
        if not isinstance(scale, dict):
            raise status.bad_request("the body of the request must be a JSON object")
        scale_meta = scale.get("metadata") or {}
        if scale_meta.get("name", meta["name"]) != meta["name"]:
            raise status.bad_request(f"the name of the object ({scale_meta.get('name')}) does not match the name "
                                     f"on the URL ({meta['name']})")
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise status.invalid("Scale", "autoscaling", meta["name"], [fe.invalid(
                "spec.replicas", fe.go_value(replicas), "must be greater than or equal to 0")])
        if scale_meta.get("uid") and scale_meta["uid"] != meta["uid"]:
            raise status.conflict(f"{rtype.resource}/scale", rtype.group, meta["name"],
                                  f"Precondition failed: UID in precondition: {scale_meta['uid']}, "
                                  f"UID in object meta: {meta['uid']}")
        wanted = copy.deepcopy(deployment)
        wanted["spec"]["replicas"] = replicas
        # The Scale's resourceVersion, when it names one, is the update's precondition.
        wanted["metadata"]["resourceVersion"] = scale_meta.get("resourceVersion") or ""
        updated = self._registry.update(rtype, meta.get("namespace", ""), meta["name"], wanted, dry_run=dry_run)
        return scale_of(updated)
