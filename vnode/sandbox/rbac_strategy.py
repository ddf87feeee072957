"""rbac.authorization.k8s.io/v1 rules: Role, ClusterRole, RoleBinding and ClusterRoleBinding.

Defaulting follows pkg/apis/rbac/v1/defaults.go and validation pkg/apis/rbac/validation (names are path segments,
rules need verbs, a binding's roleRef is immutable). The sandbox stores these objects but does not enforce them:
its authorizer is ABAC (`auth.py`), where system:masters may do anything. For the same reason there is no
escalation check (kube-apiserver lets a user create a Role granting more than they hold only with the `escalate`
verb, which an ABAC policy that allows writes also allows), and ClusterRole aggregation is not run (no
clusterrole-aggregation controller fills `rules` from `aggregationRule`).
"""

from __future__ import annotations

from typing import Any

from vnode.sandbox import field_errors as fe
from vnode.sandbox.strategy import Cause, Obj, Strategy

GROUP = "rbac.authorization.k8s.io"
_SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def path_segment_causes(field: str, name: str) -> list[Cause]:
    """ValidateRBACName (path.IsValidPathSegmentName): RBAC names may hold ':' but not '/' or '%'."""
    messages = [f"may not be '{name}'"] if name in (".", "..") else []
    messages += [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]
    return [fe.invalid(field, fe.go_quote(name), message) for message in messages]


class _RbacStrategy(Strategy):
    def validate(self, obj: Obj) -> list[Cause]:
        return path_segment_causes("metadata.name", obj["metadata"].get("name", ""))

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new)


def _rule_causes(rule: Any, path: str, namespaced: bool) -> list[Cause]:
    """ValidatePolicyRule."""
    rule = rule if isinstance(rule, dict) else {}
    causes = [] if rule.get("verbs") else [fe.required(f"{path}.verbs", "verbs must contain at least one value")]
    urls = rule.get("nonResourceURLs")
    if urls:
        shown = fe.go_strings(urls)
        if namespaced:
            causes.append(fe.invalid(f"{path}.nonResourceURLs", shown,
                                     "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(fe.invalid(f"{path}.nonResourceURLs", shown,
                                     "rules cannot apply to both regular resources and non-resource URLs"))
        return causes
    if not rule.get("apiGroups"):
        causes.append(fe.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(fe.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


class RoleStrategy(_RbacStrategy):
    namespaced = True

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        for i, rule in enumerate(obj.get("rules") or []):
            causes += _rule_causes(rule, f"rules[{i}]", self.namespaced)
        return causes


class ClusterRoleStrategy(RoleStrategy):
    namespaced = False

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        aggregation = obj.get("aggregationRule")
        if isinstance(aggregation, dict) and not aggregation.get("clusterRoleSelectors"):
            causes.append(fe.required("aggregationRule.clusterRoleSelectors",
                                      "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        return causes


def _go_role_ref(ref: Obj) -> str:
    fields = ", ".join(f"{go}:{fe.go_quote(str(ref.get(key, '')))}"
                       for go, key in (("APIGroup", "apiGroup"), ("Kind", "kind"), ("Name", "name")))
    return f"rbac.RoleRef{{{fields}}}"


def _role_ref(obj: Obj) -> tuple[str, str, str]:
    ref = obj.get("roleRef") or {}
    return ref.get("apiGroup", ""), ref.get("kind", ""), ref.get("name", "")


class RoleBindingStrategy(_RbacStrategy):
    namespaced = True
    ref_kinds: tuple[str, ...] = ("Role", "ClusterRole")

    def prepare_for_create(self, obj: Obj) -> None:
        self._default(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._default(new)

    @staticmethod
    def _default(binding: Obj) -> None:
        ref = binding.setdefault("roleRef", {})
        if isinstance(ref, dict) and not ref.get("apiGroup"):
            ref["apiGroup"] = GROUP
        for subject in binding.get("subjects") or []:
            # SetDefaults_Subject: User and Group subjects belong to the RBAC group, ServiceAccounts to core.
            if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = GROUP

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        api_group, kind, name = _role_ref(obj)
        if api_group != GROUP:
            causes.append(fe.not_supported("roleRef.apiGroup", fe.go_quote(api_group), [GROUP]))
        if kind not in self.ref_kinds:
            causes.append(fe.not_supported("roleRef.kind", fe.go_quote(kind), self.ref_kinds))
        if not name:
            causes.append(fe.required("roleRef.name"))
        else:
            causes += path_segment_causes("roleRef.name", name)
        for i, subject in enumerate(obj.get("subjects") or []):
            causes += self._subject_causes(subject if isinstance(subject, dict) else {}, f"subjects[{i}]")
        return causes

    def _subject_causes(self, subject: Obj, path: str) -> list[Cause]:
        """ValidateRoleBindingSubject."""
        causes = [] if subject.get("name") else [fe.required(f"{path}.name")]
        kind, api_group = subject.get("kind", ""), subject.get("apiGroup", "")
        if kind == "ServiceAccount":
            if api_group:
                causes.append(fe.not_supported(f"{path}.apiGroup", fe.go_quote(api_group), [""]))
            if not self.namespaced and not subject.get("namespace"):
                causes.append(fe.required(f"{path}.namespace"))
        elif kind in ("User", "Group"):
            if api_group != GROUP:
                causes.append(fe.not_supported(f"{path}.apiGroup", fe.go_quote(api_group), [GROUP]))
        else:
            causes.append(fe.not_supported(f"{path}.kind", fe.go_quote(kind), _SUBJECT_KINDS))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        causes = super().validate_update(new, old)
        # A binding grants what its role grants: pointing it elsewhere is a delete and a create, never an update.
        if _role_ref(new) != _role_ref(old):
            causes.append(fe.invalid("roleRef", _go_role_ref(new.get("roleRef") or {}), "cannot change roleRef"))
        return causes


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    namespaced = False
    ref_kinds = ("ClusterRole",)
