"""The kubelet API's request → (verb, subresource) mapping, its refusal bodies, and the authenticator's
credential-free paths (verified client certificates, anonymous) and the AlwaysAllow authorizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from vnode.clock import ManualClock
from vnode.config import KubeletSettings
from vnode.kubelet.auth import (
    KubeletAuthenticator,
    KubeletAuthorizer,
    UserInfo,
    forbidden_body,
    request_attributes,
    unauthorized_body,
)

CA_FILE = Path("/etc/kubernetes/pki/ca.crt")  # never opened: only its being set matters to the authenticator


@pytest.mark.parametrize(("method", "path", "expected"), [
    # The kubelet's own table (pkg/kubelet/server/auth.go).
    ("GET", "/pods", ("get", "proxy")),
    ("GET", "/runningpods/", ("get", "proxy")),
    ("GET", "/healthz", ("get", "proxy")),
    ("GET", "/containerLogs/default/web/main", ("get", "proxy")),
    ("GET", "/stats/summary", ("get", "stats")),
    ("POST", "/stats/summary", ("create", "stats")),
    ("GET", "/stats", ("get", "stats")),
    ("GET", "/metrics", ("get", "metrics")),
    ("GET", "/metrics/resource", ("get", "metrics")),
    ("GET", "/logs/kubelet.log", ("get", "log")),
    ("POST", "/checkpoint/default/web/main", ("create", "checkpoint")),
    ("PUT", "/pods", ("update", "proxy")),
    ("PATCH", "/pods", ("patch", "proxy")),
    ("DELETE", "/pods", ("delete", "proxy")),
    ("OPTIONS", "/pods", ("", "proxy")),
    # Prefixes match whole segments only.
    ("GET", "/statsfoo", ("get", "proxy")),
    ("GET", "/metricsx/y", ("get", "proxy")),
    # vnode: HEAD is served by the GET handlers, and vnode's own routes are proxy.
    ("HEAD", "/pods", ("get", "proxy")),
    ("GET", "/cost", ("get", "proxy")),
    ("GET", "/cost/report", ("get", "proxy")),
])
def test_kubelet_mapping(method: str, path: str, expected: tuple[str, str]) -> None:
    """Verbs come from the method and subresources from the path prefix, else proxy."""
    assert request_attributes(method, path) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/exec/default/web/main"),  # a WebSocket exec upgrade
    ("POST", "/exec/default/web/main"),
    ("GET", "/exec/default/web/0b6c-uid/main"),
    ("GET", "/attach/default/web/main"),
    ("GET", "/portForward/default/web"),
    ("HEAD", "/portForward/default/web"),
    ("GET", "/run/default/web/main"),
    ("GET", "//exec/default/web/main"),
    ("GET", "/stats/../exec/default/web/main"),
])
def test_streaming_routes_always_need_create(method: str, path: str) -> None:
    """Opening a shell, a terminal or a socket is `create` on nodes/proxy, whatever the method."""
    assert request_attributes(method, path) == ("create", "proxy")


def test_unauthorized_body_is_the_kubelets() -> None:
    """401 carries exactly `Unauthorized`."""
    assert unauthorized_body() == b"Unauthorized"


def test_forbidden_body_is_the_kubelets() -> None:
    """403 names user, verb, resource and the subresource list like Go's %v, with a trailing newline."""
    assert forbidden_body("viewer", "create", "proxy") == \
        b"Forbidden (user=viewer, verb=create, resource=nodes, subresource(s)=[proxy])\n"


# --- Authentication without the API server ------------------------------------------------------------------

APISERVER_CERT: dict[str, Any] = {"subject": (
    (("organizationName", "system:masters"),), (("organizationName", "kubeadm:cluster-admins"),),
    (("commonName", "kube-apiserver-kubelet-client"),))}


def _headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


def _authenticator(**settings: Any) -> KubeletAuthenticator:
    return KubeletAuthenticator(KubeletSettings(**settings), None, ManualClock())


async def test_verified_certificate_names_user_and_groups() -> None:
    """A certificate verified against the client CA: CN is the user, O values the groups, plus authenticated."""
    user = await _authenticator(client_ca_file=CA_FILE).authenticate(_headers(), APISERVER_CERT)
    assert user == UserInfo("kube-apiserver-kubelet-client",
                            ("system:masters", "kubeadm:cluster-admins", "system:authenticated"))


async def test_certificate_is_ignored_without_a_client_ca() -> None:
    """With no client CA nothing verified the certificate, so it proves nothing."""
    assert await _authenticator().authenticate(_headers(), APISERVER_CERT) is None


async def test_certificate_without_common_name_is_no_identity() -> None:
    """No CN: the x509 authenticator has no opinion (and anonymous is off)."""
    cert = {"subject": ((("organizationName", "system:masters"),),)}
    assert await _authenticator(client_ca_file=CA_FILE).authenticate(_headers(), cert) is None


async def test_no_credentials_is_anonymous_when_enabled() -> None:
    """With anonymous on, a bare request is system:anonymous in system:unauthenticated."""
    user = await _authenticator(anonymous=True).authenticate(_headers(), None)
    assert user == UserInfo("system:anonymous", ("system:unauthenticated",))


async def test_no_credentials_is_refused_by_default() -> None:
    """Anonymous is off by default: no credentials, no user."""
    assert await _authenticator().authenticate(_headers(), None) is None


async def test_token_is_ignored_without_the_webhook() -> None:
    """With token authentication off there is nobody to ask, so the token is ignored and anonymous applies."""
    authenticator = _authenticator(authentication_webhook=False, anonymous=True)
    user = await authenticator.authenticate(_headers(Authorization="Bearer abc"), None)
    assert user is not None and user.name == "system:anonymous"


async def test_always_allow_needs_no_api_server() -> None:
    """AlwaysAllow allows without a SubjectAccessReview (and without a client)."""
    authorizer = KubeletAuthorizer(KubeletSettings(authorization_mode="AlwaysAllow"), None, node_name="vk",
                                   clock=ManualClock())
    decision = await authorizer.authorize(UserInfo("system:anonymous", ("system:unauthenticated",)), "create",
                                          "proxy")
    assert decision.allowed
