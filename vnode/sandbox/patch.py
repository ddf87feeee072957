"""PATCH body semantics: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

Owns the per-kind table of list merge keys (the patchStrategy/patchMergeKey struct tags of k8s.io/api) and the
strategic-merge directives kubectl and client-go send: $patch, $setElementOrder, $deleteFromPrimitiveList and
$retainKeys. Every function works on copies and never mutates its arguments.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

import jsonpatch


class PatchError(ValueError):
    """A patch kube-apiserver would refuse to apply; str() says why."""


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null removes a member, anything else replaces the target."""
    return _merge_patch(copy.deepcopy(target), patch)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def apply_json_patch(target: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    """RFC 6902 operations applied in order, all or nothing; a failed `test` op fails the whole patch."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be an array of operations")
    try:
        # Copying the operations keeps their "value" members out of the result, which the caller may mutate.
        result = jsonpatch.apply_patch(target, copy.deepcopy(operations), in_place=False)
    except jsonpatch.JsonPatchTestFailed as err:
        raise PatchError(f"test operation failed: {err}") from err
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException,
            TypeError, KeyError, IndexError, ValueError, AttributeError) as err:
        raise PatchError(f"invalid JSON patch: {err}") from err
    if not isinstance(result, dict):
        raise PatchError("the patched document is not a JSON object")
    return result


# --- strategic merge patch -----------------------------------------------------------------------------

_CONTAINER_GROUPS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_LISTS = {"ports": "containerPort", "env": "name", "volumeMounts": "mountPath",
                    "volumeDevices": "devicePath"}

# (kind, field path) → patchMergeKey of every list whose Go field is tagged patchStrategy:"merge";
# "" marks a merged list of scalars, which behaves as a set union. Paths name fields only: list items are
# transparent. Kind "*" is ObjectMeta, shared by every kind. Lists not in the table are replaced wholesale.
PATCH_MERGE_KEYS: dict[tuple[str, str], str] = {
    ("*", "metadata.finalizers"): "",
    ("*", "metadata.ownerReferences"): "uid",
    **{("Pod", f"spec.{group}"): "name" for group in _CONTAINER_GROUPS},
    **{("Pod", f"spec.{group}.{field}"): key
       for group in _CONTAINER_GROUPS for field, key in _CONTAINER_LISTS.items()},
    ("Pod", "spec.volumes"): "name",
    ("Pod", "spec.imagePullSecrets"): "name",
    ("Pod", "spec.hostAliases"): "ip",
    ("Pod", "spec.topologySpreadConstraints"): "topologyKey",
    ("Pod", "spec.schedulingGates"): "name",
    ("Pod", "spec.resourceClaims"): "name",
    ("Pod", "status.conditions"): "type",
    ("Pod", "status.podIPs"): "ip",
    ("Pod", "status.hostIPs"): "ip",
    ("Pod", "status.resourceClaimStatuses"): "name",
    ("Node", "spec.podCIDRs"): "",
    ("Node", "status.conditions"): "type",
    ("Node", "status.addresses"): "type",
    ("Namespace", "status.conditions"): "type",
    ("Service", "spec.ports"): "port",
    ("Service", "status.conditions"): "type",
    ("ServiceAccount", "secrets"): "name",
    # CertificateSigningRequest status.conditions carries no patch strategy: it is replaced.
    ("Deployment", "status.conditions"): "type",
    # RBAC rules and subjects carry none either.
}
# A Deployment's pod template merges as a Pod's spec and metadata do (PodTemplateSpec reuses their types).
PATCH_MERGE_KEYS.update({("Deployment", f"spec.template.{path}"): key for (kind, path), key in PATCH_MERGE_KEYS.items()
                         if (kind == "Pod" and path.startswith("spec.")) or kind == "*"})

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_DROP = object()  # a value that removes its key instead of being stored


def _identity(value: Any) -> Any:
    """Scalars compared the way Go compares decoded JSON interface values: bools are not numbers."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if value is None or isinstance(value, str):
        return (type(value).__name__, value)
    return ("json", json.dumps(value, sort_keys=True))


def _no_merge_key(item: Any, key: str) -> PatchError:
    return PatchError(f"map: {item} does not contain declared merge key: {key}")


def _position(items: Sequence[Any], item: Any, ident: Callable[[Any], Any]) -> int:
    wanted = ident(item)
    return next((i for i, candidate in enumerate(items) if ident(candidate) == wanted), -1)


def _ordered(patch_items: list[Any], server_only: list[Any], patch_order: Sequence[Any],
             server_order: Sequence[Any], ident: Callable[[Any], Any]) -> list[Any]:
    """Patch items in patch order, server-only items in live order, interleaved as the live order allows."""
    def by(order: Sequence[Any]) -> Callable[[Any], tuple[bool, int]]:
        return lambda x: (_position(order, x, ident) < 0, _position(order, x, ident))

    left, right = sorted(server_only, key=by(server_order)), sorted(patch_items, key=by(patch_order))
    merged: list[Any] = []
    while left or right:
        # A server-only item goes first only when the live list put it before the next patch item.
        li = _position(server_order, left[0], ident) if left else -1
        ri = _position(server_order, right[0], ident) if right else -1
        take_left = not right or (bool(left) and 0 <= li < ri)
        merged.append((left if take_left else right).pop(0))
    return merged


class _StrategicMerge:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    def merge_key(self, path: str) -> str | None:
        """The list's merge key, "" for a merged list of scalars, None when the list is replaced."""
        return PATCH_MERGE_KEYS.get((self.kind, path), PATCH_MERGE_KEYS.get(("*", path)))

    def merge_map(self, original: dict[str, Any], patch: dict[str, Any], path: str) -> dict[str, Any]:
        """Merge patch into original; both are private copies and are consumed."""
        if _DIRECTIVE in patch:
            directive = patch[_DIRECTIVE]
            if directive not in ("replace", "delete", "merge"):
                raise PatchError(f"unknown patch type: {directive} in map: {patch}")
            del patch[_DIRECTIVE]
            if directive == "replace":
                return self.merge_map({}, patch, path)
            if directive == "delete":
                return {}
        if _RETAIN_KEYS in patch:
            self.retain_keys(original, patch)
        for key in [k for k in patch if k.startswith(_SET_ORDER)]:
            self.set_element_order(original, patch, key.removeprefix(_SET_ORDER), path)
            del patch[key]
        for key, value in patch.items():
            delete_from = key.startswith(_DELETE_FROM)
            field = key.removeprefix(_DELETE_FROM)
            sub = f"{path}.{field}" if path else field
            current = original.get(field, _DROP)
            if value is None:
                original.pop(field, None)
            elif current is _DROP or isinstance(current, dict) != isinstance(value, dict) \
                    or isinstance(current, list) != isinstance(value, list):
                # Absent or of another JSON type: the patch value is taken (a deletion list adds nothing).
                if not delete_from:
                    self.store(original, field, self.fresh(value, sub))
            elif isinstance(value, dict):
                original[field] = self.merge_map(current, value, sub)
            elif isinstance(value, list):
                original[field] = self.merge_list(current, value, sub, delete_from)
            else:
                original[field] = value
        return original

    def store(self, target: dict[str, Any], key: str, value: Any) -> None:
        if value is _DROP:
            target.pop(key, None)
        else:
            target[key] = value

    def fresh(self, value: Any, path: str) -> Any:
        """A patch value with nothing to merge into: directives resolved, nulls dropped."""
        if isinstance(value, dict):
            return _DROP if value.get(_DIRECTIVE) == "delete" else self.merge_map({}, value, path)
        if isinstance(value, list):
            items = (self.fresh_item(item, path) for item in value)
            return [item for item in items if item is not _DROP]
        return value

    def fresh_item(self, item: Any, path: str) -> Any:
        # In a list, a map carrying a delete or replace directive is an instruction, not an element.
        if isinstance(item, dict) and item.get(_DIRECTIVE, "merge") != "merge":
            return _DROP
        return self.fresh(item, path)

    def retain_keys(self, original: dict[str, Any], patch: dict[str, Any]) -> None:
        """$retainKeys clears every original key not listed; the patch may only set listed keys."""
        keep = patch.pop(_RETAIN_KEYS)
        if not isinstance(keep, list):
            raise PatchError("invalid patch format of retainKeys")
        for key, value in patch.items():
            if value is not None and not key.startswith((_DELETE_FROM, _SET_ORDER)) and key not in keep:
                raise PatchError("invalid patch format of retainKeys")
        for key in [k for k in original if k not in keep]:
            del original[key]

    def merge_list(self, original: list[Any], patch: list[Any], path: str, delete_from: bool) -> list[Any]:
        merge_key = self.merge_key(path)
        if delete_from:
            # $deleteFromPrimitiveList removes scalars whatever the list's strategy.
            if any(isinstance(x, dict | list) for x in original + patch):
                raise PatchError("invalid patch format of primitive list")
            doomed = {_identity(x) for x in patch}
            return [x for x in original if _identity(x) not in doomed]
        if merge_key is None:
            replaced: list[Any] = self.fresh(patch, path)
            return replaced
        if not original and not patch:
            return original
        elements = original + patch
        if any(isinstance(x, list) for x in elements):
            raise PatchError("lists of lists are not supported")
        if len({"map" if isinstance(x, dict) else _identity(x)[0] for x in elements}) > 1:
            raise PatchError(f"list element types are not identical: {elements}")
        if not isinstance(elements[0], dict):
            # A merged list of scalars is the union, first occurrences kept.
            first: dict[Any, Any] = {}
            for x in elements:
                first.setdefault(_identity(x), x)
            merged = list(first.values())
            wanted = {_identity(x) for x in patch}
            return _ordered([x for x in merged if _identity(x) in wanted],
                            [x for x in merged if _identity(x) not in wanted], patch, original, _identity)
        if not merge_key:
            raise PatchError(f"cannot merge lists without merge key for {path}")
        return self.merge_map_list(original, patch, merge_key, path)

    def merge_map_list(self, original: list[Any], patch: list[Any], key: str, path: str) -> list[Any]:
        def ident(item: Any) -> Any:
            if not isinstance(item, dict) or key not in item:
                raise _no_merge_key(item, key)
            return _identity(item[key])

        items: list[Any] = []
        for item in patch:
            directive = item.get(_DIRECTIVE)
            if directive is None or directive == "merge":
                items.append({k: v for k, v in item.items() if k != _DIRECTIVE})
            elif directive == "delete":
                gone = ident(item)
                original = [o for o in original
                            if not (isinstance(o, dict) and key in o and _identity(o[key]) == gone)]
            elif directive != "replace":
                raise PatchError(f"unknown patch type: {directive} in map: {item}")
        if any(item.get(_DIRECTIVE) == "replace" for item in patch):
            # $patch: replace as a list item: the rest of the patch list becomes the whole list.
            return [self.fresh(item, path) for item in items]
        live_order = list(original)
        merged = list(original)
        for item in items:
            at = next((i for i, o in enumerate(merged) if isinstance(o, dict) and key in o
                       and _identity(o[key]) == ident(item)), -1)
            if at >= 0:
                merged[at] = self.merge_map(merged[at], item, path)
            else:
                merged.append(self.fresh(item, path))
        wanted = {ident(item) for item in items}
        return _ordered([x for x in merged if ident(x) in wanted],
                        [x for x in merged if ident(x) not in wanted], items, live_order, ident)

    def set_element_order(self, original: dict[str, Any], patch: dict[str, Any], field: str,
                          path: str) -> None:
        """$setElementOrder/<field>: merge the field's patch list, then order the result as listed."""
        order, sub = patch[_SET_ORDER + field], f"{path}.{field}" if path else field
        merge_key = self.merge_key(sub)
        has_live, has_changes = field in original, field in patch
        live, changes = original.get(field), patch.pop(field, None)
        if not isinstance(order, list) or (has_live and not isinstance(live, list)) \
                or (has_changes and not isinstance(changes, list)):
            raise PatchError("invalid patch format of setElementOrder list")
        live_list: list[Any] = live if isinstance(live, list) else []
        change_list: list[Any] = changes if isinstance(changes, list) else []

        def ident(item: Any) -> Any:
            if not merge_key:
                return _identity(item)
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item, merge_key)
            return _identity(item[merge_key])

        if not has_live and not has_changes:
            return
        if not has_changes:
            merged = live_list
        elif not has_live:
            merged = self.fresh(change_list, sub)
        else:
            merged = self.merge_list(live_list, change_list, sub, False)
        if merge_key is None and any(isinstance(x, dict) for x in live_list + change_list):
            original[field] = merged  # maps without a merge key cannot be matched against the order list
            return
        # Patch items must appear in the same relative order as in the order list.
        listed_changes = [c for c in change_list if not (isinstance(c, dict) and _DIRECTIVE in c)]
        positions = [_position(order, c, ident) for c in listed_changes]
        if -1 in positions or positions != sorted(set(positions)):
            raise PatchError(f"the order in patch list {changes} doesn't match $setElementOrder list {order}")
        listed = {ident(x) for x in order}
        original[field] = _ordered([x for x in merged if ident(x) in listed],
                                   [x for x in merged if ident(x) not in listed], order, live_list, ident)


def apply_strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Kubernetes strategic merge patch of an object of `kind`; unknown kinds merge maps and replace lists."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _StrategicMerge(kind).merge_map(copy.deepcopy(target), copy.deepcopy(patch), "")
