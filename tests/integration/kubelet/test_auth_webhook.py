"""The kubelet API's authenticator and authorizer against a live sandbox API server: TokenReview,
SubjectAccessReview, and their caches (API requests counted by a KubeClient subclass)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from tests.support.sandbox import RunningSandbox, running_sandbox
from vnode.clock import ManualClock, SystemClock
from vnode.config import KubeletSettings
from vnode.kube import paths
from vnode.kube.client import JsonObj, KubeClient, Params
from vnode.kubelet.auth import KubeletAuthenticator, KubeletAuthorizer, UserInfo
from vnode.sandbox.auth import StaticTokens

NODE = "vnode"
TOKEN_TTL = 120.0
ALLOW_TTL = 300.0
DENY_TTL = 30.0


class CountingClient(KubeClient):
    """A KubeClient that records the path of every create (each review is one create)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.created: list[str] = []

    async def create(self, path: str, body: JsonObj, params: Params | None = None) -> JsonObj:
        self.created.append(path)
        return await super().create(path, body, params)


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[CountingClient]:
    async with await CountingClient.connect(sandbox.kubeconfig, qps=0, clock=SystemClock()) as admin:
        assert isinstance(admin, CountingClient)
        yield admin


def token(sandbox: RunningSandbox, user: str) -> str:
    return StaticTokens.load(sandbox.state_dir / "tokens.csv").token_for(user)


def bearer(value: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {value}"}))


def settings(**values: Any) -> KubeletSettings:
    return KubeletSettings(authentication_cache_ttl_seconds=TOKEN_TTL, authorized_cache_ttl_seconds=ALLOW_TTL,
                           unauthorized_cache_ttl_seconds=DENY_TTL, **values)


def authenticator(client: KubeClient, clock: ManualClock | None = None, **values: Any) -> KubeletAuthenticator:
    return KubeletAuthenticator(settings(**values), client, clock or ManualClock())


def authorizer(client: KubeClient, clock: ManualClock | None = None) -> KubeletAuthorizer:
    return KubeletAuthorizer(settings(), client, node_name=NODE, clock=clock or ManualClock())


VIEWER = UserInfo("viewer", ("system:authenticated",))
ADMIN = UserInfo("sandbox-admin", ("system:masters", "system:authenticated"))


# --- TokenReview ----------------------------------------------------------------------------------------------


async def test_valid_token_is_the_reviewed_user(sandbox: RunningSandbox, client: CountingClient) -> None:
    """A token the API server knows becomes its user, groups and uid, plus system:authenticated."""
    user = await authenticator(client).authenticate(bearer(token(sandbox, "sandbox-admin")), None)
    assert user is not None
    assert (user.name, user.groups) == ("sandbox-admin", ("system:masters", "system:authenticated"))
    assert user.uid
    assert client.created == [paths.tokenreviews_path()]


async def test_unknown_token_is_nobody(client: CountingClient) -> None:
    """A token the API server does not know authenticates no one."""
    assert await authenticator(client).authenticate(bearer("made-up-token"), None) is None


async def test_refused_token_is_not_rescued_by_anonymous(client: CountingClient) -> None:
    """A presented but refused token fails the request even with anonymous on (upstream's FailOnError)."""
    assert await authenticator(client, anonymous=True).authenticate(bearer("made-up-token"), None) is None


async def test_websocket_protocol_token_is_reviewed(sandbox: RunningSandbox, client: CountingClient) -> None:
    """A browser-style token in Sec-WebSocket-Protocol (base64url, no padding) authenticates a WebSocket upgrade."""
    encoded = base64.urlsafe_b64encode(token(sandbox, "viewer").encode()).decode().rstrip("=")
    headers = CIMultiDictProxy(CIMultiDict({
        "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Protocol": f"base64url.bearer.authorization.k8s.io.{encoded}, v4.channel.k8s.io"}))
    user = await authenticator(client).authenticate(headers, None)
    assert user is not None and user.name == "viewer"


async def test_token_answer_is_reused_within_the_ttl(sandbox: RunningSandbox, client: CountingClient) -> None:
    """A second request with the same token inside the TTL sends no TokenReview."""
    clock = ManualClock()
    authn = authenticator(client, clock)
    headers = bearer(token(sandbox, "viewer"))
    first = await authn.authenticate(headers, None)
    await clock.advance(TOKEN_TTL - 1)
    second = await authn.authenticate(headers, None)
    assert first == second and first is not None
    assert client.created == [paths.tokenreviews_path()]


async def test_token_answer_expires_after_the_ttl(sandbox: RunningSandbox, client: CountingClient) -> None:
    """Once the TTL has passed the token is reviewed again."""
    clock = ManualClock()
    authn = authenticator(client, clock)
    headers = bearer(token(sandbox, "viewer"))
    await authn.authenticate(headers, None)
    await clock.advance(TOKEN_TTL + 1)
    await authn.authenticate(headers, None)
    assert client.created == [paths.tokenreviews_path()] * 2


# --- SubjectAccessReview --------------------------------------------------------------------------------------


async def test_admin_may_open_streams(client: CountingClient) -> None:
    """system:masters may create nodes/proxy (exec, attach, port-forward)."""
    decision = await authorizer(client).authorize(ADMIN, "create", "proxy")
    assert decision.allowed


async def test_viewer_may_read_through_the_proxy(client: CountingClient) -> None:
    """The read-only viewer may get nodes/proxy (pods, logs)."""
    assert (await authorizer(client).authorize(VIEWER, "get", "proxy")).allowed


async def test_viewer_may_not_open_streams(client: CountingClient) -> None:
    """The read-only viewer may not create nodes/proxy, and the API server's reason is kept."""
    decision = await authorizer(client).authorize(VIEWER, "create", "proxy")
    assert not decision.allowed
    assert decision.reason == "No policy matched."


async def test_allow_is_cached_for_the_authorized_ttl(client: CountingClient) -> None:
    """An allow is reused until authorized_cache_ttl_seconds, then asked again."""
    clock = ManualClock()
    authz = authorizer(client, clock)
    await authz.authorize(VIEWER, "get", "proxy")
    await clock.advance(ALLOW_TTL - 1)
    await authz.authorize(VIEWER, "get", "proxy")
    assert len(client.created) == 1
    await clock.advance(2)
    await authz.authorize(VIEWER, "get", "proxy")
    assert len(client.created) == 2


async def test_deny_is_cached_for_the_unauthorized_ttl(client: CountingClient) -> None:
    """A deny is reused until unauthorized_cache_ttl_seconds, then asked again."""
    clock = ManualClock()
    authz = authorizer(client, clock)
    await authz.authorize(VIEWER, "create", "proxy")
    await clock.advance(DENY_TTL - 1)
    await authz.authorize(VIEWER, "create", "proxy")
    assert len(client.created) == 1
    await clock.advance(2)
    await authz.authorize(VIEWER, "create", "proxy")
    assert len(client.created) == 2


async def test_review_failure_denies_and_is_not_cached(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """When the review itself fails (here: vnode's own credentials may not create reviews) access is denied,
    with the failure as the reason, and the next request asks again."""
    kubeconfig = tmp_path / "viewer.kubeconfig"
    sandbox.server.pki.write_token_kubeconfig(kubeconfig, sandbox.url, user="viewer",
                                              token=token(sandbox, "viewer"))
    async with await CountingClient.connect(kubeconfig, qps=0, clock=SystemClock()) as weak:
        assert isinstance(weak, CountingClient)
        authz = authorizer(weak)
        first = await authz.authorize(ADMIN, "get", "proxy")
        await authz.authorize(ADMIN, "get", "proxy")
    assert not first.allowed
    assert first.reason.startswith("SubjectAccessReview failed")
    assert len(weak.created) == 2
