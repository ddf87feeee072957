"""Deployment and RBAC rules as kube-apiserver 1.33 applies them: defaults, validation messages, printers, Scale."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from vnode.sandbox.apps_strategy import DeploymentStrategy, selector_string
from vnode.sandbox.rbac_strategy import (
    ClusterRoleBindingStrategy,
    ClusterRoleStrategy,
    RoleBindingStrategy,
    RoleStrategy,
)
from vnode.sandbox.scale import scale_of
from vnode.sandbox.tables import to_table

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)
RBAC = "rbac.authorization.k8s.io"


def deployment(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}, **spec}}


def created(obj: dict[str, Any]) -> dict[str, Any]:
    DeploymentStrategy().prepare_for_create(obj)
    return obj


def messages(causes: list[tuple[str, str, str]]) -> list[str]:
    return [f"{field}: {message}" for field, _, message in causes]


def test_deployment_defaults_are_apps_v1s() -> None:
    """Replicas 1, RollingUpdate 25%/25%, 10 revisions, 600 s deadline, generation 1, empty status, pod defaults."""
    d = created(deployment())
    assert d["metadata"]["generation"] == 1 and d["status"] == {}
    spec = d["spec"]
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (1, 10, 600)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    pod = spec["template"]["spec"]
    assert (pod["restartPolicy"], pod["dnsPolicy"]) == ("Always", "ClusterFirst")
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    # Pod-only defaults (admission, SetDefaults_Pod) stay off templates.
    assert "enableServiceLinks" not in pod and "volumes" not in pod and "tolerations" not in pod


def test_recreate_gets_no_rolling_update_defaults() -> None:
    d = created(deployment(strategy={"type": "Recreate"}))
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    assert DeploymentStrategy().validate(d) == []


def test_template_labels_must_match_the_selector() -> None:
    d = created(deployment())
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other", "tier": "x"}
    assert messages(DeploymentStrategy().validate(d)) == [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other", "tier":"x"}: '
        "`selector` does not match template `labels`"]


def test_a_missing_selector_is_required_and_matches_nothing() -> None:
    d = deployment()
    del d["spec"]["selector"]
    assert messages(DeploymentStrategy().validate(created(d))) == [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`"]


def test_an_empty_selector_is_invalid() -> None:
    d = created(deployment(selector={}))
    assert messages(DeploymentStrategy().validate(d)) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]


def test_the_selector_is_immutable() -> None:
    old = created(deployment())
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert messages(DeploymentStrategy().validate_update(new, old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"x"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]


def test_surge_and_unavailable_cannot_both_be_zero() -> None:
    rolling = {"maxUnavailable": 0, "maxSurge": "0%"}
    d = created(deployment(strategy={"type": "RollingUpdate", "rollingUpdate": rolling}))
    assert messages(DeploymentStrategy().validate(d)) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: '
        "may not be 0 when `maxSurge` is 0"]


def test_template_restart_policy_must_be_always() -> None:
    d = created(deployment())
    d["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert messages(DeploymentStrategy().validate(d)) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']


def test_generation_follows_spec_and_annotation_changes_only() -> None:
    """Clients cannot set the generation; a spec or annotation change bumps it, a label change does not."""
    strategy, old = DeploymentStrategy(), created(deployment())
    relabelled = copy.deepcopy(old)
    relabelled["metadata"].update(labels={"x": "y"}, generation=7)
    strategy.prepare_for_update(relabelled, old)
    assert relabelled["metadata"]["generation"] == 1
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 3
    strategy.prepare_for_update(scaled, old)
    assert scaled["metadata"]["generation"] == 2


def test_role_rules_need_verbs_and_resources() -> None:
    role = {"metadata": {"name": "system:reader"}, "rules": [{"apiGroups": [""]}]}
    assert messages(RoleStrategy().validate(role)) == [
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[0].resources: Required value: resource rules must supply at least one resource"]


def test_rbac_names_are_path_segments() -> None:
    """RBAC names may hold ':' (system:*) but not '/'."""
    assert RoleStrategy().validate({"metadata": {"name": "system:x"}}) == []
    assert messages(ClusterRoleStrategy().validate({"metadata": {"name": "a/b"}})) == [
        "metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_only_cluster_roles_take_non_resource_urls() -> None:
    rule = {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}
    assert ClusterRoleStrategy().validate({"metadata": {"name": "r"}, "rules": [rule]}) == []
    assert messages(RoleStrategy().validate({"metadata": {"name": "r"}, "rules": [rule]})) == [
        'rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource '
        "URLs"]


def test_binding_api_groups_are_defaulted() -> None:
    binding = {"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa"}]}
    RoleBindingStrategy().prepare_for_create(binding)
    assert binding["roleRef"]["apiGroup"] == RBAC
    assert binding["subjects"] == [{"kind": "User", "name": "alice", "apiGroup": RBAC},
                                   {"kind": "ServiceAccount", "name": "sa"}]
    assert RoleBindingStrategy().validate(binding) == []


def test_role_ref_cannot_change() -> None:
    old = {"metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"}}
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "edit"
    assert messages(ClusterRoleBindingStrategy().validate_update(new, old)) == [
        'roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: '
        "cannot change roleRef"]


def test_cluster_role_bindings_need_cluster_roles_and_account_namespaces() -> None:
    binding = {"metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "r"},
               "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}
    assert messages(ClusterRoleBindingStrategy().validate(binding)) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value"]


def test_selector_string_is_sorted_by_key() -> None:
    selector = {"matchLabels": {"tier": "web", "app": "shop"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                     {"key": "canary", "operator": "DoesNotExist"}]}
    assert selector_string(selector) == "app=shop,!canary,env in (dev,prod),tier=web"


def test_deployment_row_and_binding_row() -> None:
    """READY is ready/desired; bindings show Kind/name and their subjects by kind."""
    d = created(deployment(replicas=3))
    d["metadata"]["creationTimestamp"] = "2025-01-10T11:58:00Z"
    d["status"] = {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}
    assert to_table("apps", "deployments", [d], now=NOW)["rows"][0]["cells"] == [
        "web", "1/3", 2, 1, "2m", "c", "nginx:1.27", "app=web"]
    binding = {"metadata": {"name": "b", "creationTimestamp": "2025-01-10T11:00:00Z"},
               "roleRef": {"kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"},
                            {"kind": "ServiceAccount", "name": "robot", "namespace": "ci"}]}
    table = to_table(RBAC, "clusterrolebindings", [binding], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    assert table["rows"][0]["cells"] == ["b", "ClusterRole/view", "60m", "a, b", "", "ci/robot"]


def test_roles_print_name_and_creation_time() -> None:
    table = to_table(RBAC, "roles", [{"metadata": {"name": "r", "creationTimestamp": "2025-01-10T11:00:00Z"}}],
                     now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["r", "2025-01-10T11:00:00Z"]


def test_scale_view_of_a_deployment() -> None:
    d = created(deployment(replicas=0))
    d["metadata"].update(uid="u-1", resourceVersion="7", creationTimestamp="2025-01-10T11:00:00Z")
    assert scale_of(d) == {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
                     "creationTimestamp": "2025-01-10T11:00:00Z"},
        "spec": {},  # replicas 0 is omitted, as ScaleSpec.replicas is omitempty
        "status": {"replicas": 0, "selector": "app=web"}}
