"""Kubernetes RBAC evaluation over the deploy/ manifests, to put vnode's real API calls to the test.

`Grants` reads Roles, ClusterRoles and their bindings as kube-apiserver's RBAC authorizer does (rbac/v1 rule
matching: verbs, apiGroups, resources with `resource/subresource`, resourceNames; a RoleBinding grants only in its
namespace). `RbacAuthorizer` answers for one subject from those grants and sends everyone else to the sandbox's own
authorizer, recording every decision it took for the subject: the sandbox stores RBAC objects but authorizes with
ABAC, never by them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vnode.sandbox import auth

Obj = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One API request as an authorizer sees it (kube's authorizer.Attributes)."""

    verb: str
    group: str
    resource: str  # "pods" or "pods/status"
    namespace: str = ""
    name: str = ""

    @classmethod
    def of(cls, attrs: auth.RequestAttributes) -> Call:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return cls(attrs.verb, attrs.api_group, resource, attrs.namespace, attrs.name)

    @property
    def permission(self) -> tuple[str, str, str]:
        return self.group, self.resource, self.verb


def _rule_allows(rule: Obj, call: Call) -> bool:
    def has(field: str, value: str) -> bool:
        values = rule.get(field) or []
        return "*" in values or value in values

    resource, _, sub = call.resource.partition("/")
    resources = rule.get("resources") or []
    resource_ok = "*" in resources or call.resource in resources or bool(
        sub and (f"{resource}/*" in resources or f"*/{sub}" in resources))
    names = rule.get("resourceNames") or []
    return has("verbs", call.verb) and has("apiGroups", call.group) and resource_ok and (
        not names or call.name in names)


def _subject_matches(subject: Obj, username: str, groups: Iterable[str]) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        return username == f"system:serviceaccount:{subject.get('namespace')}:{subject.get('name')}"
    if kind == "User":
        return username == subject.get("name")
    return kind == "Group" and subject.get("name") in set(groups)


class Grants:
    """The rules that apply to a user, from Role/ClusterRole/RoleBinding/ClusterRoleBinding objects."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        objs = list(objects)
        self._roles = {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs
                       if o["kind"] in ("Role", "ClusterRole")}
        self._bindings = [o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]

    def rules_for(self, username: str, groups: Iterable[str] = ()) -> list[tuple[str | None, Obj]]:
        """(namespace the rule is limited to, or None for cluster-wide; rule) for every binding of the user."""
        out: list[tuple[str | None, Obj]] = []
        for binding in self._bindings:
            if not any(_subject_matches(s, username, groups) for s in binding.get("subjects") or []):
                continue
            namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
            ref = binding["roleRef"]
            # A RoleBinding's Role is in the binding's namespace; ClusterRoles have none.
            role_namespace = (namespace or "") if ref["kind"] == "Role" else ""
            role = self._roles.get((ref["kind"], role_namespace, ref["name"]))
            for rule in (role or {}).get("rules") or []:
                out.append((namespace, rule))
        return out

    def allows(self, username: str, groups: Iterable[str], call: Call) -> bool:
        return any((namespace is None or namespace == call.namespace) and _rule_allows(rule, call)
                   for namespace, rule in self.rules_for(username, groups))


class RbacAuthorizer(auth.Authorizer):
    """RBAC for `username`, the sandbox's authorizer for everyone else; `decisions` lists (call, allowed)."""

    def __init__(self, grants: Grants, username: str, fallback: auth.Authorizer) -> None:
        super().__init__(())
        self._grants = grants
        self._username = username
        self._fallback = fallback
        self.decisions: list[tuple[Call, bool]] = []

    def authorize(self, user: auth.UserInfo, attrs: auth.RequestAttributes) -> auth.Decision:
        if user.username != self._username:
            return self._fallback.authorize(user, attrs)
        if not attrs.is_resource_request:
            # vnode's client does no discovery; a non-resource request would be new behaviour to grant on purpose.
            self.decisions.append((Call(attrs.verb, "", attrs.path), False))
            return auth.Decision(False, "RBAC: no nonResourceURLs granted")
        call = Call.of(attrs)
        allowed = self._grants.allows(user.username, user.groups, call)
        self.decisions.append((call, allowed))
        return auth.Decision(allowed, "" if allowed else "RBAC: no rule allows it")
