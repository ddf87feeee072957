"""The sandbox's other resources and its front door: reviews, CSRs, both Event APIs, auth, namespaces."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.sandbox import auth
from vnode.util import x509 as certs


def tokens(sandbox: RunningSandbox) -> auth.StaticTokens:
    return auth.StaticTokens.load(sandbox.state_dir / "tokens.csv")


async def raw_get(sandbox: RunningSandbox, path: str, token: str | None = None) -> tuple[int, Any]:
    context = ssl.create_default_context(cafile=str(sandbox.state_dir / "pki" / "ca.crt"))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session, \
            session.get(sandbox.url + path, headers=headers) as response:
        return response.status, await response.json()


async def test_no_credentials_get_401(sandbox: RunningSandbox) -> None:
    """A request with neither a client certificate nor a token is Unauthorized."""
    code, body = await raw_get(sandbox, "/api/v1/namespaces")
    assert code == 401
    assert body["reason"] == "Unauthorized"


async def test_read_only_viewer_cannot_create(sandbox: RunningSandbox, api: client.ApiClient) -> None:
    """The viewer token may read but a create is 403 Forbidden with kube's wording."""
    viewer = tokens(sandbox).token_for("viewer")
    code, _ = await raw_get(sandbox, "/api/v1/namespaces/default/pods", viewer)
    assert code == 200
    context = ssl.create_default_context(cafile=str(sandbox.state_dir / "pki" / "ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session, session.post(
            sandbox.url + "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}},
            headers={"Authorization": f"Bearer {viewer}"}) as response:
        body = await response.json()
    assert response.status == 403
    assert body["message"].startswith('configmaps is forbidden: User "viewer" cannot create resource "configmaps"')


async def test_token_review_authenticates_static_tokens(sandbox: RunningSandbox, api: client.ApiClient) -> None:
    """TokenReview answers who a token belongs to, and that a made-up token is nobody."""
    authn = client.AuthenticationV1Api(api)
    good = await authn.create_token_review({"spec": {"token": tokens(sandbox).token_for("viewer")}})
    bad = await authn.create_token_review({"spec": {"token": "made-up"}})
    assert good.status.authenticated and good.status.user.username == "viewer"
    assert not bad.status.authenticated


async def test_subject_access_review_follows_the_policy(api: client.ApiClient) -> None:
    """SubjectAccessReview allows the viewer to get nodes/proxy and refuses it create (exec-like)."""
    authz = client.AuthorizationV1Api(api)

    async def review(verb: str) -> bool:
        answer = await authz.create_subject_access_review({"spec": {"user": "viewer", "resourceAttributes": {
            "verb": verb, "resource": "nodes", "subresource": "proxy", "name": "vnode"}}})
        return bool(answer.status.allowed)

    assert await review("get") is True
    assert await review("create") is False


async def test_kubelet_serving_csr_is_signed_once_approved(sandbox: RunningSandbox, api: client.ApiClient) -> None:
    """A kubelet-serving CSR is issued by the sandbox CA after `kubectl certificate approve`."""
    key = certs.generate_key()
    request = certs.build_csr(key, "system:node:vnode", ["system:nodes"], dns_names=["vnode"],
                              ip_addresses=["10.1.2.3"])
    csr_api = client.CertificatesV1Api(api)
    await csr_api.create_certificate_signing_request({"metadata": {"name": "vnode-serving"}, "spec": {
        "request": base64.b64encode(request).decode(), "signerName": "kubernetes.io/kubelet-serving",
        "usages": ["digital signature", "server auth"]}})
    pending = await csr_api.read_certificate_signing_request("vnode-serving")
    assert not (pending.status and pending.status.certificate)
    await Kubectl(kubectl_binary(), sandbox.kubeconfig).run("certificate", "approve", "vnode-serving")

    async def issued() -> str | None:
        csr = await csr_api.read_certificate_signing_request("vnode-serving")
        return csr.status.certificate if csr.status else None

    pem = base64.b64decode(await eventually(issued, what="the signed certificate"))
    cert = x509.load_pem_x509_certificate(pem)
    ca = x509.load_pem_x509_certificate((sandbox.state_dir / "pki" / "ca.crt").read_bytes())
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]


async def test_events_are_one_storage_with_two_apis(sandbox: RunningSandbox, api: client.ApiClient) -> None:
    """An events.k8s.io/v1 Event is listed by the core API (field selector on the object) and vice versa."""
    events_api = client.EventsV1Api(api)
    await events_api.create_namespaced_event("default", {
        "metadata": {"name": "ev1"}, "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Pulled",
        "note": "image pulled", "type": "Normal", "action": "Pull", "reportingController": "vnode",
        "reportingInstance": "vnode-1", "regarding": {"kind": "Pod", "name": "build-1", "namespace": "default"}})
    core = client.CoreV1Api(api)
    found = await core.list_namespaced_event("default", field_selector="involvedObject.name=build-1")
    assert [(e.reason, e.message, e.reporting_component) for e in found.items] == [
        ("Pulled", "image pulled", "vnode")]
    none = await core.list_namespaced_event("default", field_selector="involvedObject.name=other")
    assert none.items == []
    back = await events_api.read_namespaced_event("ev1", "default")
    assert back.note == "image pulled" and back.regarding.name == "build-1"


async def test_deleting_a_namespace_removes_its_content(api: client.ApiClient) -> None:
    """Namespace deletion goes through Terminating and takes the namespace's objects with it."""
    core = client.CoreV1Api(api)
    await core.create_namespace({"metadata": {"name": "team-a"}})
    await core.create_namespaced_config_map("team-a", {"metadata": {"name": "settings"}})
    accounts = await core.list_namespaced_service_account("team-a")
    assert [a.metadata.name for a in accounts.items] == ["default"]
    await core.delete_namespace("team-a")
    with pytest.raises(ApiException) as caught:
        await core.read_namespace("team-a")
    assert caught.value.status == 404
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_config_map("team-a", {"metadata": {"name": "late"}})
    assert refused.value.status == 404


async def test_kubectl_api_resources_lists_served_types(sandbox: RunningSandbox) -> None:
    """Discovery is complete enough for `kubectl api-resources`."""
    out = (await Kubectl(kubectl_binary(), sandbox.kubeconfig).run("api-resources", "-o", "name")).stdout.split()
    assert {"pods", "nodes", "leases.coordination.k8s.io", "events.events.k8s.io",
            "certificatesigningrequests.certificates.k8s.io"} <= set(out)


async def test_invalid_pod_is_rejected_with_field_causes(api: client.ApiClient) -> None:
    """A pod without an image is 422 Invalid naming the field."""
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod("default", {
            "metadata": {"name": "bad"}, "spec": {"containers": [{"name": "c"}]}})
    assert caught.value.status == 422
    assert "spec.containers[0].image: Required value" in caught.value.body




async def test_token_request_issues_a_service_account_token(api: client.ApiClient) -> None:
    """serviceaccounts/<sa>/token issues a token that TokenReview maps to the service account."""
    core = client.CoreV1Api(api)
    answer = await core.create_namespaced_service_account_token("default", "default", {
        "spec": {"audiences": ["vnode"], "expirationSeconds": 3600}})
    assert answer.status.token
    review = await client.AuthenticationV1Api(api).create_token_review({"spec": {"token": answer.status.token}})
    assert review.status.authenticated
    assert review.status.user.username == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in review.status.user.groups


async def test_token_request_for_a_missing_account_is_404(api: client.ApiClient) -> None:
    """There is no token for a service account that does not exist."""
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_service_account_token("default", "ghost", {"spec": {}})
    assert caught.value.status == 404
