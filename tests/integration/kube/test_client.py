"""KubeClient against the sandbox API server: CRUD, the three patch types, preconditions, errors, rate limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.kube.conftest import pod
from tests.support.sandbox import RunningSandbox
from vnode import errors
from vnode.clock import SystemClock
from vnode.kube import paths
from vnode.kube.apierrors import status_reason
from vnode.kube.client import KubeClient
from vnode.sandbox import auth


async def test_create_get_list_replace(kube: KubeClient) -> None:
    """An object created by POST can be read, listed and replaced as plain dicts."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    assert created["metadata"]["uid"]
    fetched = await kube.get(paths.pod_path("default", "p1"))
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    fetched["metadata"]["labels"] = {"step": "2"}
    replaced = await kube.replace(paths.pod_path("default", "p1"), fetched)
    assert replaced["metadata"]["labels"] == {"step": "2"}
    listed = await kube.list(paths.pods_path("default"), {"labelSelector": "step=2"})
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p1"]


async def test_replace_with_a_stale_resource_version_is_a_conflict(kube: KubeClient) -> None:
    """PUT with an old resourceVersion raises Conflict."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    await kube.patch(paths.pod_path("default", "p1"), {"metadata": {"labels": {"a": "1"}}})
    with pytest.raises(errors.Conflict):
        await kube.replace(paths.pod_path("default", "p1"), created)


async def test_strategic_merge_patch_merges_lists_by_key(kube: KubeClient) -> None:
    """A strategic patch of a container merges into the list by name instead of replacing it."""
    await kube.create(paths.pods_path("default"), pod("p1"))
    patched = await kube.patch(paths.pod_path("default", "p1"),
                               {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}})
    assert patched["spec"]["containers"][0]["image"] == "busybox:1.37"


async def test_merge_patch_removes_a_key_set_to_null(kube: KubeClient) -> None:
    """A JSON merge patch with null deletes the member."""
    await kube.create(paths.pods_path("default"), pod("p1", a="1", b="2"))
    patched = await kube.patch(paths.pod_path("default", "p1"), {"metadata": {"labels": {"a": None}}},
                               patch_type="merge")
    assert patched["metadata"]["labels"] == {"b": "2"}


async def test_json_patch_applies_operations(kube: KubeClient) -> None:
    """A JSON patch (a list of operations) is applied in order, and a failing test op is Invalid."""
    await kube.create(paths.pods_path("default"), pod("p1", a="1"))
    patched = await kube.patch(paths.pod_path("default", "p1"),
                               [{"op": "replace", "path": "/metadata/labels/a", "value": "9"}], patch_type="json")
    assert patched["metadata"]["labels"] == {"a": "9"}
    with pytest.raises(errors.Invalid):
        await kube.patch(paths.pod_path("default", "p1"),
                         [{"op": "test", "path": "/metadata/labels/a", "value": "1"}], patch_type="json")


async def test_delete_with_a_wrong_uid_precondition_is_refused(kube: KubeClient) -> None:
    """A UID precondition that does not match raises Conflict and leaves the object in place."""
    await kube.create(paths.pods_path("default"), pod("p1"))
    with pytest.raises(errors.Conflict, match="Precondition failed"):
        await kube.delete(paths.pod_path("default", "p1"), grace_period_seconds=0, preconditions={"uid": "other"})
    assert await kube.get(paths.pod_path("default", "p1"))


async def test_delete_with_the_right_uid_removes_the_object(kube: KubeClient) -> None:
    """grace 0 with a matching UID precondition deletes at once."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    await kube.delete(paths.pod_path("default", "p1"), grace_period_seconds=0,
                      preconditions={"uid": created["metadata"]["uid"]}, propagation_policy="Background")
    with pytest.raises(errors.NotFound):
        await kube.get(paths.pod_path("default", "p1"))


async def test_graceful_delete_returns_the_terminating_object(kube: KubeClient) -> None:
    """Without grace 0 a bound pod is marked for deletion and returned with its deletionTimestamp."""
    await kube.create(paths.pods_path("default"), pod("p1"))
    terminating = await kube.delete(paths.pod_path("default", "p1"), grace_period_seconds=30)
    assert terminating["metadata"]["deletionTimestamp"]


async def test_creating_a_taken_name_is_a_conflict_with_reason_already_exists(kube: KubeClient) -> None:
    """A second POST of the same name raises Conflict whose Status reason is AlreadyExists."""
    await kube.create(paths.pods_path("default"), pod("p1"))
    with pytest.raises(errors.Conflict) as caught:
        await kube.create(paths.pods_path("default"), pod("p1"))
    assert status_reason(caught.value) == "AlreadyExists"


async def test_an_invalid_object_is_invalid(kube: KubeClient) -> None:
    """A pod without containers is rejected with 422, mapped to Invalid with the server's message."""
    body = pod("p1")
    body["spec"]["containers"] = []
    with pytest.raises(errors.Invalid, match="containers"):
        await kube.create(paths.pods_path("default"), body)


async def test_a_missing_object_is_not_found(kube: KubeClient) -> None:
    """GET of an absent pod raises NotFound carrying the Status message."""
    with pytest.raises(errors.NotFound, match='pods "nope" not found'):
        await kube.get(paths.pod_path("default", "nope"))


async def test_a_refused_request_is_forbidden(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """A user without RBAC for the verb gets Forbidden."""
    viewer = tmp_path / "viewer.kubeconfig"
    token = auth.StaticTokens.load(sandbox.state_dir / "tokens.csv").token_for("viewer")
    sandbox.server.pki.write_token_kubeconfig(viewer, sandbox.url, user="viewer", token=token)
    async with await KubeClient.connect(viewer, clock=SystemClock()) as client:
        with pytest.raises(errors.Forbidden):
            await client.create(paths.pods_path("default"), pod("p1"))


async def test_an_unreachable_server_is_api_server_unavailable(sandbox: RunningSandbox) -> None:
    """Connection refused becomes the retryable ApiServerUnavailable, with the aiohttp error chained."""
    async with await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as client:
        client.host = "https://127.0.0.1:1"
        with pytest.raises(errors.ApiServerUnavailable) as caught:
            await client.get(paths.pod_path("default", "p1"))
    assert caught.value.__cause__ is not None


async def test_kubeconfig_env_is_used_when_no_path_is_given(sandbox: RunningSandbox,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """connect() with no path reads $KUBECONFIG."""
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig))
    async with await KubeClient.connect(clock=SystemClock()) as client:
        assert (await client.get("/api/v1/namespaces/default"))["metadata"]["name"] == "default"


async def test_qps_limit_slows_a_burst(sandbox: RunningSandbox) -> None:
    """qps=20, burst=5: 25 concurrent GETs wait about 1 s in total for tokens, recorded by the limiter."""
    async with await KubeClient.connect(sandbox.kubeconfig, qps=20, burst=5, clock=SystemClock()) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.get("/api/v1/namespaces/default") for _ in range(25)))
        elapsed = time.monotonic() - started
    # The 20 requests past the burst waited 1/20, 2/20, ... 20/20 s: 10.5 s summed, the last one 1 s.
    assert client.limiter.throttled_total == 20
    assert client.limiter.waited_seconds_total >= 10.0
    assert elapsed >= 0.95
