"""The resource types the sandbox API server serves, and what discovery says about them.

One `ResourceType` per (group, resource): its kind, scope, subresources and verbs. The store, the REST handlers and
discovery all read this table; nothing else in the sandbox hard-codes a resource list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    resource: str  # plural, lower case: the URL segment
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Subresources served under `<resource>/<name>/<sub>`; `status` writes change only .status.
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Create-only review resources (TokenReview, SubjectAccessReview) are answered, never stored.
    stored: bool = True
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: the plural name, qualified by group for non-core groups."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _core(resource: str, kind: str, namespaced: bool, **kw: object) -> ResourceType:
    return ResourceType("", "v1", resource, kind, namespaced, **kw)  # type: ignore[arg-type]


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, short_names=("ns",), subresources=("status", "finalize"),
          verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
    _core("nodes", "Node", False, short_names=("no",), subresources=("status", "proxy")),
    _core("pods", "Pod", True, short_names=("po",), categories=("all",),
          subresources=("status", "binding", "log", "exec", "attach", "portforward")),
    _core("events", "Event", True, short_names=("ev",)),
    _core("configmaps", "ConfigMap", True, short_names=("cm",)),
    _core("secrets", "Secret", True),
    _core("services", "Service", True, short_names=("svc",), categories=("all",), subresources=("status",)),
    _core("serviceaccounts", "ServiceAccount", True, short_names=("sa",), subresources=("token",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, short_names=("ev",)),
    ResourceType("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", False,
                 verbs=CREATE_ONLY, stored=False),
    ResourceType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False,
                 verbs=CREATE_ONLY, stored=False),
    ResourceType("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False,
                 short_names=("csr",), subresources=("status", "approval")),
    # What `kubectl apply -k deploy/...` creates besides core kinds: vnode's RBAC and its Deployment.
    ResourceType("apps", "v1", "deployments", "Deployment", True, short_names=("deploy",), categories=("all",),
                 subresources=("status", "scale")),
    *(ResourceType("rbac.authorization.k8s.io", "v1", resource, kind, namespaced) for resource, kind, namespaced in (
        ("clusterrolebindings", "ClusterRoleBinding", False), ("clusterroles", "ClusterRole", False),
        ("rolebindings", "RoleBinding", True), ("roles", "Role", True))),
)

# events.k8s.io/v1 Events are a second view of the core Events, as in kube-apiserver: one storage.
SHARED_STORAGE = {"events.events.k8s.io": "events"}


class ResourceRegistry:
    """Look-ups over `RESOURCE_TYPES` by URL and by kind."""

    def __init__(self, types: tuple[ResourceType, ...] = RESOURCE_TYPES) -> None:
        self.types = types
        self._by_path = {(t.group, t.version, t.resource): t for t in types}
        self._by_kind = {(t.group, t.kind): t for t in types}

    def lookup(self, group: str, version: str, resource: str) -> ResourceType | None:
        return self._by_path.get((group, version, resource))

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((group, kind))

    def storage_key(self, rtype: ResourceType) -> str:
        return SHARED_STORAGE.get(rtype.key, rtype.key)

    def storage_key_aliases(self) -> set[str]:
        """Keys of types served from another type's storage (listing them again would repeat objects)."""
        return set(SHARED_STORAGE)

    def group_versions(self) -> dict[str, list[str]]:
        """Group name → served versions, core group first, in registration order."""
        out: dict[str, list[str]] = {}
        for t in self.types:
            versions = out.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [t for t in self.types if t.group == group and t.version == version]
