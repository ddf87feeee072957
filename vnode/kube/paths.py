"""REST paths of the resources vnode touches, so controllers never hand-assemble URLs.

Owns the URL layout of kube-apiserver (`/api/v1` for the core group, `/apis/<group>/<version>` for the others,
`namespaces/<ns>/` for namespaced resources, `/<subresource>` last). It builds strings only: no I/O, no query
parameters.
"""

from __future__ import annotations

from urllib.parse import quote

CORE_V1 = "v1"
COORDINATION_V1 = "coordination.k8s.io/v1"
AUTHENTICATION_V1 = "authentication.k8s.io/v1"
AUTHORIZATION_V1 = "authorization.k8s.io/v1"
CERTIFICATES_V1 = "certificates.k8s.io/v1"


def _seg(value: str) -> str:
    # Names are DNS subdomains already; quoting guards against a stray '/' ending up in the path.
    return quote(value, safe="")


def _prefix(group_version: str) -> str:
    return "/api/v1" if group_version == CORE_V1 else f"/apis/{group_version}"


def resource_path(group_version: str, resource: str, *, namespace: str | None = None, name: str | None = None,
                  sub: str | None = None) -> str:
    """Any resource: collection when `name` is None, across all namespaces when `namespace` is None too."""
    path = _prefix(group_version)
    if namespace is not None:
        path += f"/namespaces/{_seg(namespace)}"
    path += f"/{resource}"
    if name is not None:
        path += f"/{_seg(name)}"
        if sub:
            path += f"/{sub}"
    return path


def pods_path(namespace: str | None = None) -> str:
    """The pod collection of one namespace, or of all namespaces (what the node's pod informer watches)."""
    return resource_path(CORE_V1, "pods", namespace=namespace)


def pod_path(namespace: str, name: str, sub: str | None = None) -> str:
    """One pod, or a subresource of it (`status`, `binding`, `eviction`)."""
    return resource_path(CORE_V1, "pods", namespace=namespace, name=name, sub=sub)


def nodes_path() -> str:
    return resource_path(CORE_V1, "nodes")


def node_path(name: str, sub: str | None = None) -> str:
    """One Node, or its `status` subresource (what node heartbeats patch)."""
    return resource_path(CORE_V1, "nodes", name=name, sub=sub)


def leases_path(namespace: str) -> str:
    return resource_path(COORDINATION_V1, "leases", namespace=namespace)


def lease_path(namespace: str, name: str) -> str:
    """A coordination.k8s.io/v1 Lease; node heartbeats live in `kube-node-lease` under the node's name."""
    return resource_path(COORDINATION_V1, "leases", namespace=namespace, name=name)


def events_path(namespace: str) -> str:
    """The core/v1 Event collection of a namespace (events are always namespaced)."""
    return resource_path(CORE_V1, "events", namespace=namespace)


def event_path(namespace: str, name: str) -> str:
    return resource_path(CORE_V1, "events", namespace=namespace, name=name)


def secret_path(namespace: str, name: str) -> str:
    return resource_path(CORE_V1, "secrets", namespace=namespace, name=name)


def configmap_path(namespace: str, name: str) -> str:
    return resource_path(CORE_V1, "configmaps", namespace=namespace, name=name)


def service_account_token_path(namespace: str, name: str) -> str:
    """TokenRequest: POST here to mint a projected service account token for a pod."""
    return resource_path(CORE_V1, "serviceaccounts", namespace=namespace, name=name, sub="token")


def tokenreviews_path() -> str:
    """TokenReview: POST a token here to learn whose it is (create-only; nothing is stored)."""
    return resource_path(AUTHENTICATION_V1, "tokenreviews")


def subjectaccessreviews_path() -> str:
    """SubjectAccessReview: POST a user and resource attributes here to learn whether the user may act."""
    return resource_path(AUTHORIZATION_V1, "subjectaccessreviews")


def certificatesigningrequests_path() -> str:
    return resource_path(CERTIFICATES_V1, "certificatesigningrequests")


def certificatesigningrequest_path(name: str, sub: str | None = None) -> str:
    """One CertificateSigningRequest, or its `approval` (what `kubectl certificate approve` writes) or `status`."""
    return resource_path(CERTIFICATES_V1, "certificatesigningrequests", name=name, sub=sub)
