"""Unit tests for vnode.sandbox.auth: authentication, RequestInfo, ABAC, reviews and 401/403 bodies."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from vnode.errors import ConfigError
from vnode.sandbox.auth import (
    ABAC_API_VERSION,
    Authenticator,
    Authorizer,
    Decision,
    RequestAttributes,
    RequestInfoError,
    ReviewError,
    StaticTokens,
    UserInfo,
    ensure_policy_file,
    ensure_token_file,
    forbidden_status,
    parse_policies,
    request_attributes,
    subject_access_review,
    token_review,
    unauthorized_status,
)
from vnode.util import x509 as certs

VIEWER = UserInfo("viewer", "u-2", ("system:authenticated",))
TOKENS_CSV = (
    'tok-admin,sandbox-admin,u-1,"system:masters,ops"\n'
    "tok-view,viewer,u-2\n"
    "\n"
    "tok-node,system:node:vnode,u-3,system:nodes\n"
)


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(StaticTokens.parse(TOKENS_CSV))


@pytest.fixture
def authorizer(tmp_path: Path) -> Authorizer:
    return Authorizer.from_file(ensure_policy_file(tmp_path))


def _policy(spec: str) -> str:
    return f'{{"apiVersion":"{ABAC_API_VERSION}","kind":"Policy","spec":{spec}}}'


def _attrs(method: str, path: str, **query: str) -> RequestAttributes:
    return request_attributes(method, path, query)


# --- RequestInfo ---


def test_exec_is_create_on_pods_exec_subresource() -> None:
    """POST .../pods/x/exec resolves to verb create, resource pods, subresource exec."""
    assert _attrs("POST", "/api/v1/namespaces/default/pods/x/exec") == RequestAttributes(
        verb="create", path="/api/v1/namespaces/default/pods/x/exec", is_resource_request=True,
        api_version="v1", namespace="default", resource="pods", subresource="exec", name="x")


def test_log_is_get_on_pods_log_subresource() -> None:
    """GET .../pods/x/log is a get of subresource log, not a list."""
    a = _attrs("GET", "/api/v1/namespaces/ci/pods/x/log")
    assert (a.verb, a.resource, a.subresource, a.name, a.namespace) == ("get", "pods", "log", "x", "ci")


def test_node_proxy_is_proxy_subresource_at_cluster_scope() -> None:
    """GET /api/v1/nodes/n/proxy/... is subresource proxy of node n, with the tail ignored."""
    a = _attrs("GET", "/api/v1/nodes/vnode/proxy/containerLogs/ci/x/c")
    assert (a.verb, a.resource, a.name, a.subresource, a.namespace) == ("get", "nodes", "vnode", "proxy", "")


def test_deprecated_proxy_prefix_is_a_verb_without_subresource() -> None:
    """/api/v1/proxy/nodes/n/x makes proxy the verb and never a subresource."""
    a = _attrs("GET", "/api/v1/proxy/nodes/vnode/stats")
    assert (a.verb, a.resource, a.name, a.subresource) == ("proxy", "nodes", "vnode", "")


@pytest.mark.parametrize(("watch", "verb"), [("true", "watch"), ("1", "watch"), ("false", "list"),
                                             ("0", "list"), ("FALSE", "list")])
def test_watch_query_turns_collection_get_into_watch(watch: str, verb: str) -> None:
    """?watch= anything but 0/false makes a collection GET a watch."""
    assert _attrs("GET", "/api/v1/namespaces/default/pods", watch=watch).verb == verb


def test_collection_get_is_list_at_cluster_scope() -> None:
    """GET /api/v1/pods is list with no namespace."""
    a = _attrs("GET", "/api/v1/pods")
    assert (a.verb, a.resource, a.namespace, a.name) == ("list", "pods", "", "")


def test_namespace_path_is_the_namespace_object() -> None:
    """/api/v1/namespaces/ns names the namespace itself (resource namespaces, name and namespace ns)."""
    a = _attrs("GET", "/api/v1/namespaces/ci")
    assert (a.verb, a.resource, a.name, a.namespace) == ("get", "namespaces", "ci", "ci")


def test_namespace_finalize_is_a_namespace_subresource() -> None:
    """PUT /api/v1/namespaces/ns/finalize is subresource finalize of namespace ns."""
    a = _attrs("PUT", "/api/v1/namespaces/ci/finalize")
    assert (a.verb, a.resource, a.name, a.subresource) == ("update", "namespaces", "ci", "finalize")


def test_named_group_resource() -> None:
    """/apis/{group}/{version}/... carries the API group."""
    a = _attrs("PATCH", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vnode")
    assert (a.verb, a.api_group, a.api_version, a.resource, a.name) == (
        "patch", "coordination.k8s.io", "v1", "leases", "vnode")


def test_collection_delete_is_deletecollection() -> None:
    """DELETE on a collection is deletecollection."""
    assert _attrs("DELETE", "/api/v1/namespaces/ci/pods").verb == "deletecollection"


def test_field_selector_on_name_pins_the_name() -> None:
    """A watch with fieldSelector metadata.name=x carries name x, as kubectl get pod x -w sends."""
    a = _attrs("GET", "/api/v1/namespaces/ci/pods", watch="1", fieldSelector="metadata.name=x")
    assert (a.verb, a.name) == ("watch", "x")


@pytest.mark.parametrize("selector", ["metadata.name!=x", "spec.nodeName=vnode", "metadata.name=a/b",
                                      "metadata.name=a\\q", "bogus", "metadata.name=.."])
def test_field_selector_without_usable_name_pins_nothing(selector: str) -> None:
    """Negations, other fields, unparsable selectors and invalid path segments leave name empty."""
    assert _attrs("GET", "/api/v1/pods", fieldSelector=selector).name == ""


def test_field_selector_name_among_other_terms_is_unescaped() -> None:
    """metadata.name== among several comma-separated terms is found and unescaped."""
    a = _attrs("GET", "/api/v1/pods", fieldSelector="spec.nodeName=vnode,metadata.name==a\\,b")
    assert a.name == "a,b"


@pytest.mark.parametrize("path", ["/version", "/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1",
                                  "/openapi/v2", "/healthz", "/"])
def test_non_resource_paths(path: str) -> None:
    """Discovery, version, OpenAPI and health paths are non-resource requests with the HTTP verb."""
    assert _attrs("GET", path) == RequestAttributes(verb="get", path=path)


def test_special_verb_without_resource_is_an_error() -> None:
    """/api/v1/watch alone cannot name a resource."""
    with pytest.raises(RequestInfoError, match="unable to determine kind"):
        _attrs("GET", "/api/v1/watch")


# --- Static tokens and authentication ---


def test_token_csv_quoted_groups_are_split() -> None:
    """A quoted fourth column is a comma-separated group list; three columns mean no groups."""
    tokens = StaticTokens.parse(TOKENS_CSV)
    assert tokens.lookup("tok-admin") == UserInfo("sandbox-admin", "u-1", ("system:masters", "ops"))
    assert tokens.lookup("tok-view") == UserInfo("viewer", "u-2", ())


def test_token_csv_short_record_is_rejected() -> None:
    """A record with fewer than three columns is a configuration error."""
    with pytest.raises(ConfigError, match="at least 3 columns"):
        StaticTokens.parse("tok,user\n")


def test_static_tokens_repr_hides_tokens() -> None:
    """repr() of the token table never contains a token."""
    assert "tok-" not in repr(StaticTokens.parse(TOKENS_CSV))


def test_ensure_token_file_creates_private_random_tokens(tmp_path: Path) -> None:
    """tokens.csv is written 0600 with admin, viewer and node users and distinct tokens."""
    path = ensure_token_file(tmp_path)
    tokens = StaticTokens.load(path)
    names = ("sandbox-admin", "viewer", "system:node:vnode")
    users = {name: tokens.lookup(tokens.token_for(name)) for name in names}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [u.groups for u in users.values() if u] == [("system:masters",), (), ("system:nodes",)]
    assert len({tokens.token_for(name) for name in users}) == 3


def test_ensure_token_file_keeps_existing_file(tmp_path: Path) -> None:
    """A later start reuses tokens.csv unchanged."""
    before = ensure_token_file(tmp_path).read_bytes()
    assert ensure_token_file(tmp_path).read_bytes() == before


def test_bearer_token_authenticates_with_authenticated_group(authenticator: Authenticator) -> None:
    """A known bearer token yields its user plus system:authenticated."""
    user = authenticator.authenticate(None, "Bearer tok-node")
    assert user == UserInfo("system:node:vnode", "u-3", ("system:nodes", "system:authenticated"))


@pytest.mark.parametrize("header", [None, "", "Bearer nope", "Basic dG9rLWFkbWlu", "Bearer", "tok-admin"])
def test_missing_or_bad_credentials_are_unauthenticated(
    authenticator: Authenticator, header: str | None
) -> None:
    """No header, unknown tokens and other schemes give None (401)."""
    assert authenticator.authenticate(None, header) is None


def test_client_cert_wins_over_token(authenticator: Authenticator) -> None:
    """A verified client certificate's CN/O is the user even when a token is also sent."""
    ca_cert, ca_key = certs.new_ca("ca")
    leaf, _ = certs.issue_certificate(ca_cert, ca_key, common_name="alice", organizations=["dev"])
    user = authenticator.authenticate(leaf.public_bytes(serialization.Encoding.DER), "Bearer tok-admin")
    assert user == UserInfo("alice", "", ("dev", "system:authenticated"))


# --- ABAC ---


def test_viewer_may_read(authorizer: Authorizer) -> None:
    """The default policy lets viewer get pods in any namespace."""
    assert authorizer.authorize(VIEWER, _attrs("GET", "/api/v1/namespaces/ci/pods/x")).allowed


def test_viewer_may_not_create(authorizer: Authorizer) -> None:
    """viewer's readonly rule refuses create, with ABAC's no-match reason."""
    decision = authorizer.authorize(VIEWER, _attrs("POST", "/api/v1/namespaces/ci/pods/x/exec"))
    assert decision == Decision(False, "No policy matched.")


def test_masters_always_allowed_even_without_policy() -> None:
    """system:masters is authorized by the privileged-group rule, not by the policy file."""
    admin = UserInfo("root", "", ("system:masters",))
    assert Authorizer([]).authorize(admin, _attrs("DELETE", "/api/v1/nodes/vnode")).allowed


def test_nodes_group_may_write(authorizer: Authorizer) -> None:
    """The default policy lets system:nodes update node status."""
    node = UserInfo("system:node:vnode", "", ("system:nodes",))
    assert authorizer.authorize(node, _attrs("PATCH", "/api/v1/nodes/vnode/status")).allowed


def test_unknown_user_is_refused(authorizer: Authorizer) -> None:
    """An authenticated user no rule names gets no access, even to read."""
    stranger = UserInfo("mallory", "", ("system:authenticated",))
    assert not authorizer.authorize(stranger, _attrs("GET", "/api/v1/pods")).allowed


def test_non_resource_path_prefix_rule() -> None:
    """nonResourcePath with a trailing * matches paths under the prefix only."""
    authorizer = Authorizer(parse_policies(_policy('{"user":"*","nonResourcePath":"/apis*"}')))
    assert authorizer.authorize(VIEWER, _attrs("GET", "/apis/apps")).allowed
    assert not authorizer.authorize(VIEWER, _attrs("GET", "/version")).allowed


def test_policy_with_wrong_api_version_is_rejected() -> None:
    """A line that is not an abac v1beta1 Policy is a configuration error naming the line."""
    text = '# comment\n{"apiVersion":"v1","kind":"Policy","spec":{"user":"a"}}\n'
    with pytest.raises(ConfigError, match="line 2"):
        parse_policies(text)


def test_policy_with_unknown_field_is_rejected() -> None:
    """A misspelt spec field is refused instead of silently matching nothing."""
    with pytest.raises(ConfigError, match="spec must be an object"):
        parse_policies(_policy('{"user":"a","namspace":"*"}'))


# --- TokenReview and SubjectAccessReview ---


def _review(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    group = "authentication.k8s.io" if kind == "TokenReview" else "authorization.k8s.io"
    return {"apiVersion": f"{group}/v1", "kind": kind, "spec": spec}


def test_token_review_of_known_token(authenticator: Authenticator) -> None:
    """A known token reviews as authenticated with username, uid, groups and the requested audiences."""
    body = _review("TokenReview", {"token": "tok-view", "audiences": ["vnode"]})
    answer = token_review(body, authenticator)
    assert answer["kind"] == "TokenReview"
    assert answer["status"] == {"authenticated": True, "audiences": ["vnode"], "user": {
        "username": "viewer", "uid": "u-2", "groups": ["system:authenticated"]}}


def test_token_review_of_unknown_token(authenticator: Authenticator) -> None:
    """An unknown token reviews as unauthenticated with kube's bearer-token error."""
    answer = token_review(_review("TokenReview", {"token": "nope"}), authenticator)
    assert answer["status"] == {"authenticated": False, "user": {}, "error": "invalid bearer token"}


def test_token_review_without_token_is_bad_request(authenticator: Authenticator) -> None:
    """An empty spec.token is a 400 with kube's message."""
    with pytest.raises(ReviewError, match="token is required for TokenReview") as info:
        token_review(_review("TokenReview", {}), authenticator)
    assert info.value.code == 400


def test_sar_allowed_for_viewer_read(authorizer: Authorizer) -> None:
    """A read by viewer reviews as allowed and echoes the spec."""
    spec = {"user": "viewer", "resourceAttributes": {"namespace": "ci", "verb": "get", "resource": "pods"}}
    answer = subject_access_review(_review("SubjectAccessReview", spec), authorizer)
    assert (answer["spec"], answer["status"]) == (spec, {"allowed": True})


def test_sar_not_allowed_carries_reason(authorizer: Authorizer) -> None:
    """A refused action reviews as allowed=false with the ABAC reason (ABAC has no explicit deny)."""
    exec_attrs = {"namespace": "ci", "verb": "create", "resource": "pods", "subresource": "exec"}
    spec = {"user": "viewer", "groups": ["system:authenticated"], "resourceAttributes": exec_attrs}
    answer = subject_access_review(_review("SubjectAccessReview", spec), authorizer)
    assert answer["status"] == {"allowed": False, "reason": "No policy matched."}


def test_sar_non_resource_attributes(authorizer: Authorizer) -> None:
    """nonResourceAttributes are authorized by path and verb."""
    spec = {"groups": ["system:nodes"], "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    answer = subject_access_review(_review("SubjectAccessReview", spec), authorizer)
    assert answer["status"]["allowed"] is True


def test_sar_with_both_attribute_kinds_is_invalid(authorizer: Authorizer) -> None:
    """resourceAttributes together with nonResourceAttributes is a 422 naming the field."""
    spec = {"user": "u", "resourceAttributes": {}, "nonResourceAttributes": {}}
    with pytest.raises(ReviewError, match="cannot be specified in combination") as info:
        subject_access_review(_review("SubjectAccessReview", spec), authorizer)
    assert (info.value.code, info.value.reason) == (422, "Invalid")


def test_sar_without_subject_is_invalid(authorizer: Authorizer) -> None:
    """A review naming neither user nor groups is a 422."""
    spec = {"nonResourceAttributes": {"path": "/", "verb": "get"}}
    with pytest.raises(ReviewError, match="at least one of user or group"):
        subject_access_review(_review("SubjectAccessReview", spec), authorizer)


def test_sar_with_wrong_kind_is_bad_request(authorizer: Authorizer) -> None:
    """A body of another kind is a 400."""
    with pytest.raises(ReviewError, match="SubjectAccessReview") as info:
        subject_access_review({"apiVersion": "v1", "kind": "Pod", "spec": {}}, authorizer)
    assert info.value.code == 400


# --- 401 / 403 ---


def test_unauthorized_status_body() -> None:
    """The 401 body is byte-for-byte kube-apiserver's Status."""
    assert unauthorized_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_forbidden_namespaced_subresource() -> None:
    """A namespaced subresource denial uses kube's exact wording and details."""
    status = forbidden_status(VIEWER, _attrs("POST", "/api/v1/namespaces/default/pods/x/exec"))
    assert status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "x" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" '
                   'in the namespace "default"',
        "reason": "Forbidden", "details": {"name": "x", "kind": "pods"}, "code": 403}


def test_forbidden_cluster_scoped_group_resource_with_reason() -> None:
    """A cluster-scoped denial says 'at the cluster scope', qualifies the group and appends the reason."""
    attrs = _attrs("DELETE", "/apis/storage.k8s.io/v1/storageclasses/fast")
    status = forbidden_status(VIEWER, attrs, "No policy matched.")
    assert status["message"] == (
        'storageclasses.storage.k8s.io "fast" is forbidden: User "viewer" cannot delete '
        'resource "storageclasses" in API group "storage.k8s.io" at the cluster scope: No policy matched.')
    assert status["details"] == {"name": "fast", "group": "storage.k8s.io", "kind": "storageclasses"}


def test_forbidden_list_has_no_name() -> None:
    """A collection denial has no quoted name in the message."""
    status = forbidden_status(VIEWER, _attrs("GET", "/api/v1/namespaces/ci/pods", watch="true"))
    assert status["message"] == (
        'pods is forbidden: User "viewer" cannot watch resource "pods" in API group "" in the namespace "ci"')


def test_forbidden_non_resource_path() -> None:
    """A non-resource denial names the path and carries empty details."""
    status = forbidden_status(VIEWER, _attrs("POST", "/logs/<x>"))
    assert status["message"] == 'forbidden: User "viewer" cannot post path "/logs/&lt;x&gt;"'
    assert status["details"] == {}
