"""JSON merge patch, JSON patch and strategic merge patch give what kube-apiserver gives."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vnode.sandbox.patch import (
    PATCH_MERGE_KEYS,
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

# --- JSON merge patch ------------------------------------------------------------------------------------


def test_merge_patch_null_deletes_member() -> None:
    """A null member removes the key; other members merge recursively."""
    result = apply_merge_patch({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": None, "e": 4}})
    assert result == {"a": {"c": 2, "e": 4}, "d": 3}


def test_merge_patch_replaces_arrays() -> None:
    """Arrays are replaced, never merged."""
    assert apply_merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_merge_patch_non_object_replaces_target() -> None:
    """A patch that is not an object is the result."""
    assert apply_merge_patch({"a": 1}, ["x"]) == ["x"]


def test_merge_patch_object_over_scalar() -> None:
    """An object patched onto a scalar member starts from an empty object."""
    assert apply_merge_patch({"a": "s"}, {"a": {"b": None, "c": 1}}) == {"a": {"c": 1}}


def test_merge_patch_does_not_mutate_inputs() -> None:
    """Target and patch are left untouched."""
    target, patch = {"a": {"b": 1}}, {"a": {"c": {"d": 1}}}
    result = apply_merge_patch(target, patch)
    result["a"]["c"]["d"] = 2
    assert target == {"a": {"b": 1}}
    assert patch == {"a": {"c": {"d": 1}}}


# --- JSON patch ------------------------------------------------------------------------------------------


def test_json_patch_applies_operations_in_order() -> None:
    """add, replace and remove apply one after another."""
    ops = [{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
           {"op": "replace", "path": "/spec/replicas", "value": 3},
           {"op": "remove", "path": "/spec/paused"}]
    result = apply_json_patch({"metadata": {}, "spec": {"replicas": 1, "paused": True}}, ops)
    assert result == {"metadata": {"labels": {"a": "b"}}, "spec": {"replicas": 3}}


def test_json_patch_failed_test_op_raises() -> None:
    """A failing `test` operation rejects the whole patch."""
    with pytest.raises(PatchError, match="test"):
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}, {"op": "remove", "path": "/a"}])


def test_json_patch_missing_path_raises() -> None:
    """Removing a member that does not exist is an error."""
    with pytest.raises(PatchError):
        apply_json_patch({"a": 1}, [{"op": "remove", "path": "/b"}])


def test_json_patch_unknown_op_raises() -> None:
    """An operation name outside RFC 6902 is an error."""
    with pytest.raises(PatchError):
        apply_json_patch({}, [{"op": "frobnicate", "path": "/a"}])


def test_json_patch_must_be_a_list() -> None:
    """The patch document must be an array of operations."""
    with pytest.raises(PatchError):
        apply_json_patch({}, {"op": "add"})  # type: ignore[arg-type]


def test_json_patch_does_not_mutate_inputs() -> None:
    """Neither the target nor the operations' values are shared with the result."""
    target: dict[str, Any] = {"a": {"b": 1}}
    ops = [{"op": "add", "path": "/c", "value": {"d": 1}}]
    result = apply_json_patch(target, ops)
    result["a"]["b"] = 2
    result["c"]["d"] = 2
    assert target == {"a": {"b": 1}}
    assert ops[0]["value"] == {"d": 1}


# --- strategic merge patch -------------------------------------------------------------------------------

NODE: dict[str, Any] = {
    "metadata": {"name": "vnode-1"},
    "status": {
        "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "False"}],
        "addresses": [{"type": "InternalIP", "address": "10.0.0.1"},
                      {"type": "Hostname", "address": "vnode-1"}],
    },
}

POD: dict[str, Any] = {
    "metadata": {"name": "build", "finalizers": ["a", "b"], "labels": {"app": "ci"}},
    "spec": {
        "containers": [
            {"name": "main", "image": "busybox:1", "args": ["sleep", "1"],
             "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "envoy:1"},
        ],
        "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists"}],
        "volumes": [{"name": "work", "emptyDir": {}}],
    },
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "main", "ready": True}, {"name": "sidecar", "ready": True}]},
}


def test_node_condition_patch_by_type_keeps_other_conditions() -> None:
    """The kubelet's status patch updates Ready in place and keeps MemoryPressure."""
    patch = {"status": {"$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
                        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}
    result = apply_strategic_merge_patch(NODE, patch, "Node")
    assert result["status"]["conditions"] == [
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "True", "reason": "KubeletReady"},
    ]
    assert result["status"]["addresses"] == NODE["status"]["addresses"]


def test_node_address_merges_by_type() -> None:
    """Node addresses merge on their type."""
    patch = {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}
    result = apply_strategic_merge_patch(NODE, patch, "Node")
    assert {a["type"]: a["address"] for a in result["status"]["addresses"]} == {
        "InternalIP": "10.0.0.2", "Hostname": "vnode-1"}


def test_container_image_patch_by_name() -> None:
    """`kubectl set image` changes one container's image and leaves the rest of it alone."""
    patch = {"spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}}
    result = apply_strategic_merge_patch(POD, patch, "Pod")
    assert [c["image"] for c in result["spec"]["containers"]] == ["busybox:1", "envoy:2"]
    assert result["spec"]["containers"][0] == POD["spec"]["containers"][0]


def test_env_and_ports_merge_inside_a_container() -> None:
    """env merges by name and ports by containerPort inside the matched container."""
    env = [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]
    patch = {"spec": {"containers": [{"name": "main", "env": env, "ports": [{"containerPort": 8080}]}]}}
    main = apply_strategic_merge_patch(POD, patch, "Pod")["spec"]["containers"][0]
    assert sorted((e["name"], e["value"]) for e in main["env"]) == [("A", "2"), ("B", "3")]
    assert sorted(p["containerPort"] for p in main["ports"]) == [80, 8080]


def test_kubectl_apply_patch_with_set_element_order() -> None:
    """An apply patch reorders containers per $setElementOrder and merges the changed one."""
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "main"}],
                      "containers": [{"name": "sidecar", "image": "envoy:3"}]}}
    result = apply_strategic_merge_patch(POD, patch, "Pod")
    assert [(c["name"], c["image"]) for c in result["spec"]["containers"]] == [
        ("sidecar", "envoy:3"), ("main", "busybox:1")]


def test_set_element_order_keeps_server_only_items() -> None:
    """Items the order list does not name stay, placed by their live position relative to listed items."""
    live = {"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}]}}
    result = apply_strategic_merge_patch(live, patch, "Pod")
    # b was live before c, so it stays ahead of c; the listed items follow the order list.
    assert [c["name"] for c in result["spec"]["containers"]] == ["b", "c", "a"]


def test_set_element_order_must_agree_with_patch_list() -> None:
    """A patch list in another order than $setElementOrder is rejected."""
    patch = {"spec": {"$setElementOrder/containers": [{"name": "main"}, {"name": "sidecar"}],
                      "containers": [{"name": "sidecar", "image": "x"}, {"name": "main", "image": "y"}]}}
    with pytest.raises(PatchError, match="doesn't match"):
        apply_strategic_merge_patch(POD, patch, "Pod")


def test_patch_delete_removes_list_item() -> None:
    """`$patch: delete` on a list item removes the entry with that merge key."""
    patch = {"spec": {"containers": [{"name": "main", "$patch": "delete"}]}}
    result = apply_strategic_merge_patch(POD, patch, "Pod")
    assert [c["name"] for c in result["spec"]["containers"]] == ["sidecar"]


def test_patch_replace_item_replaces_whole_list() -> None:
    """A `$patch: replace` item makes the rest of the patch list the whole list."""
    patch = {"spec": {"volumes": [{"name": "cache", "emptyDir": {}}, {"$patch": "replace"}]}}
    volumes = apply_strategic_merge_patch(POD, patch, "Pod")["spec"]["volumes"]
    assert volumes == [{"name": "cache", "emptyDir": {}}]


def test_patch_replace_in_map_replaces_map() -> None:
    """`$patch: replace` in a map drops the keys the patch does not name."""
    patch = {"metadata": {"labels": {"$patch": "replace", "team": "infra"}}}
    assert apply_strategic_merge_patch(POD, patch, "Pod")["metadata"]["labels"] == {"team": "infra"}


def test_patch_delete_in_map_empties_it() -> None:
    """`$patch: delete` in a map removes all of its contents."""
    result = apply_strategic_merge_patch(POD, {"metadata": {"labels": {"$patch": "delete"}}}, "Pod")
    assert result["metadata"]["labels"] == {}


def test_patch_merge_directive_is_plain_merge() -> None:
    """`$patch: merge` asks for the default behaviour."""
    result = apply_strategic_merge_patch(POD, {"metadata": {"labels": {"$patch": "merge", "x": "y"}}}, "Pod")
    assert result["metadata"]["labels"] == {"app": "ci", "x": "y"}


def test_finalizers_are_a_union() -> None:
    """Patching finalizers adds to the set; new ones come first, as the apiserver orders them."""
    result = apply_strategic_merge_patch(POD, {"metadata": {"finalizers": ["c", "a"]}}, "Pod")
    assert result["metadata"]["finalizers"] == ["c", "a", "b"]


def test_delete_from_primitive_list() -> None:
    """`$deleteFromPrimitiveList/finalizers` removes the named finalizers."""
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    result = apply_strategic_merge_patch(POD, patch, "Pod")
    assert result["metadata"]["finalizers"] == ["b"]


def test_delete_from_absent_primitive_list_adds_nothing() -> None:
    """Deleting from a list the object lacks leaves it absent."""
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}
    result = apply_strategic_merge_patch({"metadata": {}}, patch, "Pod")
    assert result == {"metadata": {}}


def test_owner_references_merge_by_uid() -> None:
    """ownerReferences merge on uid."""
    live = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "controller": True}]}}
    refs = apply_strategic_merge_patch(live, patch, "ConfigMap")["metadata"]["ownerReferences"]
    assert sorted(refs, key=lambda r: r["uid"]) == [{"uid": "1", "name": "a", "controller": True},
                                                     {"uid": "2", "name": "b"}]


def test_null_deletes_key() -> None:
    """A null value removes the key."""
    result = apply_strategic_merge_patch(POD, {"metadata": {"labels": {"app": None}}}, "Pod")
    assert result["metadata"]["labels"] == {}


@pytest.mark.parametrize(("path", "value"), [
    (("spec", "tolerations"), [{"key": "new", "operator": "Exists"}]),
    (("status", "containerStatuses"), [{"name": "main", "ready": False}]),
])
def test_lists_without_strategy_are_replaced(path: tuple[str, str], value: list[dict[str, Any]]) -> None:
    """tolerations and containerStatuses carry no patch strategy, so they are replaced wholesale."""
    result = apply_strategic_merge_patch(POD, {path[0]: {path[1]: value}}, "Pod")
    assert result[path[0]][path[1]] == value


def test_container_args_are_replaced() -> None:
    """A container's args list is replaced, not merged."""
    patch = {"spec": {"containers": [{"name": "main", "args": ["sleep", "5"]}]}}
    assert apply_strategic_merge_patch(POD, patch, "Pod")["spec"]["containers"][0]["args"] == ["sleep", "5"]


def test_pod_status_conditions_merge_by_type() -> None:
    """Pod status conditions merge by type."""
    patch = {"status": {"conditions": [{"type": "Initialized", "status": "True"}]}}
    types = [c["type"] for c in apply_strategic_merge_patch(POD, patch, "Pod")["status"]["conditions"]]
    assert sorted(types) == ["Initialized", "Ready"]


def test_csr_conditions_are_replaced() -> None:
    """CertificateSigningRequest conditions have no merge key, unlike Pod's."""
    live = {"status": {"conditions": [{"type": "Approved", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    result = apply_strategic_merge_patch(live, patch, "CertificateSigningRequest")
    assert result["status"]["conditions"] == [{"type": "Failed", "status": "True"}]


def test_unknown_kind_merges_maps_and_replaces_lists() -> None:
    """Without a schema, maps merge recursively and lists are replaced."""
    live = {"spec": {"a": 1, "items": [{"name": "x"}]}}
    result = apply_strategic_merge_patch(live, {"spec": {"b": 2, "items": [{"name": "y"}]}}, "Widget")
    assert result == {"spec": {"a": 1, "b": 2, "items": [{"name": "y"}]}}


def test_retain_keys_clears_unlisted_fields() -> None:
    """`$retainKeys` drops original keys it does not list (a volume switching source type)."""
    volume_patch = {"name": "work", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}
    patch = {"spec": {"volumes": [volume_patch]}}
    volume = apply_strategic_merge_patch(POD, patch, "Pod")["spec"]["volumes"][0]
    assert volume == {"name": "work", "hostPath": {"path": "/x"}}


def test_retain_keys_rejects_patch_keys_it_omits() -> None:
    """A patch setting a key missing from its own `$retainKeys` is malformed."""
    with pytest.raises(PatchError, match="retainKeys"):
        apply_strategic_merge_patch(POD, {"spec": {"$retainKeys": ["volumes"], "hostname": "x"}}, "Pod")


def test_missing_merge_key_is_an_error() -> None:
    """An item of a merged list must carry the merge key."""
    with pytest.raises(PatchError, match="does not contain declared merge key: name"):
        apply_strategic_merge_patch(POD, {"spec": {"containers": [{"image": "x"}]}}, "Pod")


def test_unknown_patch_directive_is_an_error() -> None:
    """`$patch` values other than replace, delete and merge are rejected."""
    with pytest.raises(PatchError, match="unknown patch type: bogus"):
        apply_strategic_merge_patch(POD, {"metadata": {"$patch": "bogus"}}, "Pod")


def test_new_list_items_lose_directives_and_nulls() -> None:
    """An added container is stored without nulls or directive keys."""
    patch = {"spec": {"containers": [{"name": "new", "image": "x", "command": None}]}}
    containers = apply_strategic_merge_patch(POD, patch, "Pod")["spec"]["containers"]
    # Without $setElementOrder, items new to the list are placed before the live ones.
    assert containers[0] == {"name": "new", "image": "x"}
    assert [c["name"] for c in containers] == ["new", "main", "sidecar"]


def test_strategic_patch_does_not_mutate_inputs() -> None:
    """The live object and the patch are left as they were."""
    live = copy.deepcopy(POD)
    patch = {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "main"}],
                      "containers": [{"name": "main", "$patch": "delete"}]}}
    before = copy.deepcopy(patch)
    apply_strategic_merge_patch(live, patch, "Pod")
    assert live == POD
    assert patch == before


def test_merge_key_table_names_pod_containers() -> None:
    """The schema table is keyed by (kind, field path) and lists ObjectMeta under "*"."""
    assert PATCH_MERGE_KEYS[("Pod", "spec.containers")] == "name"
    assert PATCH_MERGE_KEYS[("Pod", "spec.initContainers.volumeMounts")] == "mountPath"
    assert PATCH_MERGE_KEYS[("*", "metadata.finalizers")] == ""
