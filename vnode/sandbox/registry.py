"""Generic registry semantics over the store, as kube-apiserver's generic registry applies them.

Create (names, uid, timestamps, namespace lifecycle), update (resourceVersion and uid preconditions, the status
subresource split, no-op detection), patch, and delete (preconditions, graceful deletion, finalizers). Per-kind
rules come from strategies; the HTTP layer (`rest.py`) parses requests and calls in here.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from vnode.clock import Clock, rfc3339
from vnode.sandbox import events, patch, status
from vnode.sandbox.apps_strategy import DeploymentStrategy
from vnode.sandbox.pod_strategy import PodStrategy, random_suffix
from vnode.sandbox.rbac_strategy import (
    ClusterRoleBindingStrategy,
    ClusterRoleStrategy,
    RoleBindingStrategy,
    RoleStrategy,
)
from vnode.sandbox.resources import ResourceRegistry, ResourceType
from vnode.sandbox.store import Obj, Store
from vnode.sandbox.strategy import (
    CertificateSigningRequestStrategy,
    EventStrategy,
    LenientCreateOnUpdate,
    NamespaceStrategy,
    NodeStrategy,
    SecretStrategy,
    Strategy,
)

PATCH_TYPES = {
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/strategic-merge-patch+json": "strategic",
}
# Objects every namespace gets from kube-controller-manager (service account and root-CA publisher controllers).
NamespaceBootstrap = Callable[[str], list[tuple[str, Obj]]]


def patch_type_of(content_type: str) -> str:
    """"merge", "json" or "strategic"; 415 for any other Content-Type (checked before the object is read)."""
    patch_type = PATCH_TYPES.get(content_type.split(";")[0].strip())
    if patch_type is None:
        raise status.unsupported_media_type(content_type)
    return patch_type


def apply_patch(served: Obj, patch_type: str, body: Any, kind: str) -> Obj:
    """The object a PATCH body of `patch_type` makes of `served` (the object as its kind `kind` is served)."""
    try:
        if patch_type == "merge":
            patched = patch.apply_merge_patch(served, body)
        elif patch_type == "json":
            patched = patch.apply_json_patch(served, body)
        else:
            patched = patch.apply_strategic_merge_patch(served, body, kind)
    except patch.PatchError as exc:
        raise status.ApiError(422, "Invalid", str(exc)) from exc
    if not isinstance(patched, dict):
        raise status.bad_request("the patch did not produce an object")
    # A patch is unconditional unless it names a resourceVersion itself.
    patch_rv = body.get("metadata", {}).get("resourceVersion") if isinstance(body, dict) else None
    patched.setdefault("metadata", {})["resourceVersion"] = patch_rv or served["metadata"].get("resourceVersion")
    return patched


class Registry:
    def __init__(self, store: Store, clock: Clock, resources: ResourceRegistry,
                 namespace_bootstrap: NamespaceBootstrap | None = None) -> None:
        self.store = store
        self.clock = clock
        self.resources = resources
        self._namespace_bootstrap = namespace_bootstrap
        default = Strategy()
        lenient = LenientCreateOnUpdate()
        self._strategies: dict[str, Strategy] = {
            "pods": PodStrategy(lambda ns, name: store.get("serviceaccounts", ns, name) is not None),
            "namespaces": NamespaceStrategy(),
            "nodes": NodeStrategy(),
            "events": EventStrategy(),
            "secrets": SecretStrategy(),
            "leases.coordination.k8s.io": lenient,
            "certificatesigningrequests.certificates.k8s.io": CertificateSigningRequestStrategy(),
            "deployments.apps": DeploymentStrategy(),
            "roles.rbac.authorization.k8s.io": RoleStrategy(),
            "clusterroles.rbac.authorization.k8s.io": ClusterRoleStrategy(),
            "rolebindings.rbac.authorization.k8s.io": RoleBindingStrategy(),
            "clusterrolebindings.rbac.authorization.k8s.io": ClusterRoleBindingStrategy(),
        }
        self._default = default

    def strategy(self, rtype: ResourceType) -> Strategy:
        return self._strategies.get(self.resources.storage_key(rtype), self._default)

    # Conversion between the served version and the stored one (only Events differ).

    def to_storage(self, rtype: ResourceType, obj: Obj) -> Obj:
        return events.core_from_events_v1(obj) if rtype.key == "events.events.k8s.io" else obj

    def from_storage(self, rtype: ResourceType, obj: Obj) -> Obj:
        return events.events_v1_from_core(obj) if rtype.key == "events.events.k8s.io" else obj

    # Reads

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(self.resources.storage_key(rtype), namespace, name)
        if obj is None:
            raise status.not_found(rtype.resource, rtype.group, name)
        return obj

    # Create

    def create(self, rtype: ResourceType, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        obj = self._check_body(rtype, body)
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise status.bad_request("the namespace of the provided object does not match the namespace "
                                         "sent on the request")
            meta["namespace"] = namespace
            self._require_active_namespace(namespace)
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise status.invalid(rtype.kind, rtype.group, "", [(
                    "metadata.name", "FieldValueRequired", "Required value: name or generateName is required")])
            meta["name"] = meta["generateName"] + random_suffix()
        strategy = self.strategy(rtype)
        if not strategy.keep_status_on_create:
            obj.pop("status", None)
        for transient in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(transient, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        strategy.prepare_for_create(obj)
        self._raise_invalid(rtype, meta["name"], strategy.validate(obj))
        key = self.resources.storage_key(rtype)
        stored = self.to_storage(rtype, obj)
        if dry_run:
            if self.store.get(key, meta.get("namespace", ""), meta["name"]) is not None:
                raise status.already_exists(rtype.resource, rtype.group, meta["name"])
            return obj
        try:
            created = self.store.create(key, stored)
        except KeyError:
            raise status.already_exists(rtype.resource, rtype.group, meta["name"]) from None
        if rtype.key == "namespaces" and self._namespace_bootstrap:
            for child_key, child in self._namespace_bootstrap(meta["name"]):
                self._create_quietly(child_key, child)
        return self.from_storage(rtype, created)

    def _create_quietly(self, key: str, obj: Obj) -> None:
        meta = obj["metadata"]
        if self.store.get(key, meta.get("namespace", ""), meta["name"]) is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = rfc3339(self.clock.now())
            self.store.create(key, obj)

    def _require_active_namespace(self, namespace: str) -> None:
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise status.not_found("namespaces", "", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise status.ApiError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                                  "because it is being terminated", {"name": namespace, "kind": "namespaces"})

    def _check_body(self, rtype: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise status.bad_request("the body of the request must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != rtype.kind) or (api_version and api_version != rtype.api_version):
            raise status.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                     f"API version ({rtype.api_version})" if api_version != rtype.api_version
                                     else f"the kind in the data ({kind}) does not match the expected kind "
                                          f"({rtype.kind})")
        body["kind"], body["apiVersion"] = rtype.kind, rtype.api_version
        return body

    @staticmethod
    def _raise_invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> None:
        if causes:
            raise status.invalid(rtype.kind, rtype.group, name, causes)

    # Update and patch

    def update(self, rtype: ResourceType, namespace: str, name: str, body: Obj, *,
               subresource: str | None = None, dry_run: bool = False) -> Obj:
        obj = self._check_body(rtype, body)
        meta = obj.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise status.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on "
                                     f"the URL ({name})")
        key = self.resources.storage_key(rtype)
        stored_old = self.store.get(key, namespace, name)
        if stored_old is None:
            if subresource is None and self.strategy(rtype).allow_create_on_update:
                meta["name"] = name
                return self.create(rtype, namespace, obj, dry_run=dry_run)
            raise status.not_found(rtype.resource, rtype.group, name)
        old = self.from_storage(rtype, stored_old)
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise status.conflict(rtype.resource, rtype.group, name, status.STALE_OBJECT)
        if meta.get("uid") and meta["uid"] != old["metadata"]["uid"]:
            raise status.conflict(rtype.resource, rtype.group, name,
                                  f"Precondition failed: UID in precondition: {meta['uid']}, "
                                  f"UID in object meta: {old['metadata']['uid']}")
        new = self._merge_for_update(rtype, old, obj, subresource)
        strategy = self.strategy(rtype)
        strategy.prepare_for_update(new, old)
        self._raise_invalid(rtype, name, strategy.validate_update(new, old))
        return self._commit_update(rtype, key, old, new, dry_run)

    def _merge_for_update(self, rtype: ResourceType, old: Obj, obj: Obj, subresource: str | None) -> Obj:
        if subresource in ("status", "approval"):
            # A status write changes only .status (for a CSR approval, only its conditions).
            new = copy.deepcopy(old)
            if subresource == "status":
                new["status"] = obj.get("status") or {}
            else:
                new.setdefault("status", {})["conditions"] = (obj.get("status") or {}).get("conditions") or []
            return new
        new = obj
        meta, old_meta = new["metadata"], old["metadata"]
        # Identity and lifecycle fields are owned by the server.
        for field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generateName"):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        if rtype.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    def _commit_update(self, rtype: ResourceType, key: str, old: Obj, new: Obj, dry_run: bool) -> Obj:
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old or dry_run:
            return old if new == old else new
        meta = new["metadata"]
        # A terminating object whose last finalizer is removed, with no grace left to wait for, is deleted.
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not meta.get(
                "deletionGracePeriodSeconds") and rtype.key != "namespaces":
            return self.from_storage(rtype, self._remove(key, meta.get("namespace", ""), meta["name"]))
        if rtype.key == "namespaces" and meta.get("deletionTimestamp") and not (new.get("spec") or {}).get(
                "finalizers") and not meta.get("finalizers"):
            return self._remove(key, "", meta["name"])
        return self.from_storage(rtype, self.store.replace(key, self.to_storage(rtype, new)))

    def patch(self, rtype: ResourceType, namespace: str, name: str, content_type: str, body: Any, *,
              subresource: str | None = None, dry_run: bool = False) -> Obj:
        patch_type = patch_type_of(content_type)
        served = self.from_storage(rtype, self.get(rtype, namespace, name))
        patched = apply_patch(served, patch_type, body, rtype.kind)
        return self.update(rtype, namespace, name, patched, subresource=subresource, dry_run=dry_run)

    # Delete

    def delete(self, rtype: ResourceType, namespace: str, name: str, *, grace_period_seconds: int | None = None,
               preconditions: dict[str, Any] | None = None, dry_run: bool = False) -> tuple[Obj, bool]:
        """Returns the object and whether it is gone (False: it is now terminating)."""
        key = self.resources.storage_key(rtype)
        old = self.get(rtype, namespace, name)
        meta = old["metadata"]
        preconditions = preconditions or {}
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field)
            if wanted and wanted != meta.get(field):
                raise status.conflict(rtype.resource, rtype.group, name,
                                      f"Precondition failed: {label} in precondition: {wanted}, "
                                      f"{label} in object meta: {meta.get(field)}")
        if rtype.key == "namespaces":
            return self._delete_namespace(old, dry_run)
        grace = self.strategy(rtype).grace_period_seconds(old, grace_period_seconds)
        finalizers = meta.get("finalizers") or []
        terminating = meta.get("deletionTimestamp")
        if grace == 0 and not finalizers:
            if dry_run:
                return old, True
            return self.from_storage(rtype, self._remove(key, namespace, name)), True
        current_grace = meta.get("deletionGracePeriodSeconds")
        if terminating and (current_grace is None or grace >= current_grace):
            return old, False  # already terminating; a delete can only shorten the grace period
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = rfc3339(self.clock.now() + timedelta(seconds=grace))
        new["metadata"]["deletionGracePeriodSeconds"] = grace
        if dry_run:
            return new, False
        return self.from_storage(rtype, self.store.replace(key, self.to_storage(rtype, new))), False

    def _remove(self, key: str, namespace: str, name: str) -> Obj:
        removed = self.store.remove(key, namespace, name)
        if namespace:
            self._maybe_finish_namespace(namespace)
        return removed

    def _delete_namespace(self, ns: Obj, dry_run: bool) -> tuple[Obj, bool]:
        """Namespace lifecycle: mark Terminating, delete its content, drop the namespace once it is empty."""
        name = ns["metadata"]["name"]
        if dry_run:
            return ns, False
        if not ns["metadata"].get("deletionTimestamp"):
            new = copy.deepcopy(ns)
            new["metadata"]["deletionTimestamp"] = rfc3339(self.clock.now())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
            ns = self.store.replace("namespaces", new)
        for rtype in self.resources.types:
            if not rtype.namespaced or not rtype.stored or rtype.key in self.resources.storage_key_aliases():
                continue
            for obj in list(self.store.iterate(rtype.key, name)):
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    self.delete(rtype, name, meta["name"])
        return self._maybe_finish_namespace(name) or ns, False

    def _maybe_finish_namespace(self, name: str) -> Obj | None:
        ns = self.store.get("namespaces", "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        for rtype in self.resources.types:
            if not rtype.namespaced or not rtype.stored or rtype.key in self.resources.storage_key_aliases():
                continue
            if next(self.store.iterate(rtype.key, name), None) is not None:
                return None
        return self.store.remove("namespaces", "", name)

    # Pod binding (the scheduler's write)

    def bind(self, namespace: str, name: str, binding: Obj) -> Obj:
        pods = self.resources.lookup("", "v1", "pods")
        assert pods is not None
        pod = self.get(pods, namespace, name)
        target = (binding.get("target") or {}).get("name")
        if not target:
            raise status.invalid("Binding", "", name, [("target.name", "FieldValueRequired", "Required value")])
        if pod["metadata"].get("deletionTimestamp"):
            raise status.conflict("pods", "", name, "pod is being deleted, cannot be assigned to a host")
        if pod["spec"].get("nodeName"):
            raise status.conflict("pods", "", name,
                                  f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"')
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = target
        conditions = [c for c in new["status"].get("conditions", []) if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": rfc3339(self.clock.now())})
        new["status"]["conditions"] = conditions
        return self.store.replace("pods", new)
