"""KubeClient.watch against the sandbox: decoded events, timeouts, ERROR frames; and in-cluster credentials."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.integration.kube.conftest import pod
from tests.support.sandbox import RunningSandbox, running_sandbox
from vnode import errors
from vnode.clock import SystemClock
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kube.kubeconfig import load_configuration
from vnode.sandbox import auth


async def test_watch_streams_decoded_events_after_a_resource_version(kube: KubeClient) -> None:
    """Watching from a list's resourceVersion yields ADDED, MODIFIED and DELETED dicts in order."""
    start = (await kube.list(paths.pods_path("default")))["metadata"]["resourceVersion"]
    await kube.create(paths.pods_path("default"), pod("p1"))
    await kube.patch(paths.pod_path("default", "p1"), {"metadata": {"labels": {"a": "1"}}})
    await kube.delete(paths.pod_path("default", "p1"), grace_period_seconds=0)
    seen = []
    async with contextlib.aclosing(kube.watch(paths.pods_path("default"),
                                              {"resourceVersion": start, "timeoutSeconds": 5})) as events:
        async for event in events:
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                break
    assert seen == [("ADDED", "p1"), ("MODIFIED", "p1"), ("DELETED", "p1")]


async def test_watch_ends_when_its_timeout_passes(kube: KubeClient) -> None:
    """A quiet watch with timeoutSeconds=1 ends by itself, without an error."""
    events = [e async for e in kube.watch(paths.pods_path("default"), {"resourceVersion": "1", "timeoutSeconds": 1})]
    assert events == []


async def test_watch_bookmarks_are_passed_through(tmp_path: Path) -> None:
    """With allowWatchBookmarks, BOOKMARK events carrying a resourceVersion reach the caller."""
    async with running_sandbox(tmp_path / "s", bookmark_interval_seconds=0.2) as sandbox, \
            await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as kube:
        start = (await kube.list(paths.pods_path()))["metadata"]["resourceVersion"]
        async with contextlib.aclosing(kube.watch(paths.pods_path(), {
                "resourceVersion": start, "allowWatchBookmarks": True, "timeoutSeconds": 5})) as events:
            first = await anext(events)
    assert first["type"] == "BOOKMARK"
    assert first["object"]["metadata"]["resourceVersion"]


async def test_watch_from_a_compacted_version_raises_expired(tmp_path: Path) -> None:
    """Once history has moved past the version, the ERROR frame (410) raises Expired."""
    async with running_sandbox(tmp_path / "s", watch_history=100) as sandbox, \
            await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as kube:
        created = await kube.create(paths.pods_path("default"), pod("p1"))
        for n in range(110):
            await kube.patch(paths.pod_path("default", "p1"), {"metadata": {"labels": {"n": str(n)}}})
        with pytest.raises(errors.Expired):
            async for _ in kube.watch(paths.pods_path("default"),
                                      {"resourceVersion": created["metadata"]["resourceVersion"]}):
                pass


async def test_in_cluster_credentials_reach_the_server(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """The service account token and CA files, with KUBERNETES_SERVICE_HOST/PORT, authenticate requests."""
    token_path = tmp_path / "token"
    token_path.write_text(auth.StaticTokens.load(sandbox.state_dir / "tokens.csv").token_for("sandbox-admin"))
    url = urlsplit(sandbox.url)
    configuration = await load_configuration(
        environ={"KUBERNETES_SERVICE_HOST": str(url.hostname), "KUBERNETES_SERVICE_PORT": str(url.port)},
        home=tmp_path / "home", token_path=token_path, ca_path=sandbox.server.pki.ca_cert_path)
    async with KubeClient(configuration, clock=SystemClock()) as kube:
        created = await kube.create(paths.pods_path("default"), pod("p1"))
    assert created["metadata"]["name"] == "p1"
