"""Informer against the sandbox: initial list, live updates, watch resumption, relist after 410, selectors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.kube.conftest import pod
from tests.support.sandbox import running_sandbox
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kube.informer import Informer
from vnode.kube.ratelimit import Backoff


@dataclass
class Seen:
    """What the handler was told: (kind, name, labels of obj, labels of old, was ready) per call."""
    events: list[tuple[str, str, dict[str, str], dict[str, str] | None, bool]] = field(default_factory=list)
    informer: Informer | None = None

    def __call__(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        assert self.informer is not None
        labels = obj["metadata"].get("labels") or {}
        old_labels = None if old is None else old["metadata"].get("labels") or {}
        self.events.append((kind, obj["metadata"]["name"], labels, old_labels, self.informer.ready.is_set()))

    def kinds(self, name: str) -> list[str]:
        return [e[0] for e in self.events if e[1] == name]

    async def has(self, kind: str, name: str) -> bool:
        return kind in self.kinds(name)


def pod_informer(client: KubeClient, seen: Seen, **kwargs: Any) -> Informer:
    informer = Informer(client, paths.pods_path(), on_event=seen, clock=SystemClock(),
                        backoff=Backoff(0.05, 0.2), **kwargs)
    seen.informer = informer
    return informer


@contextlib.asynccontextmanager
async def running(informer: Informer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(informer.run(), name=f"informer {informer.name}")
    try:
        await asyncio.wait_for(informer.ready.wait(), 10)
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_initial_list_is_delivered_before_ready(kube: KubeClient) -> None:
    """Objects that exist at start arrive as ADDED, all before `ready` is set, and fill the cache."""
    for name in ("a", "b", "c"):
        await kube.create(paths.pods_path("default"), pod(name))
    seen = Seen()
    informer = pod_informer(kube, seen)
    async with running(informer):
        assert sorted((kind, name, ready) for kind, name, _, _, ready in seen.events) == [
            ("ADDED", "a", False), ("ADDED", "b", False), ("ADDED", "c", False)]
        assert informer.keys() == {"default/a", "default/b", "default/c"}
        assert informer.get("default/a")["kind"] == "Pod"  # type: ignore[index]


async def test_list_pages_are_all_collected(kube: KubeClient) -> None:
    """A list paginated with `limit` still delivers every object."""
    for n in range(7):
        await kube.create(paths.pods_path("default"), pod(f"p{n}"))
    seen = Seen()
    informer = pod_informer(kube, seen, page_size=2)
    async with running(informer):
        assert len(informer) == 7
        assert len(seen.events) == 7


async def test_changes_after_ready_are_delivered_with_the_old_object(kube: KubeClient) -> None:
    """A create, a patch and a delete arrive as ADDED, MODIFIED (with the previous state) and DELETED."""
    seen = Seen()
    informer = pod_informer(kube, seen)
    async with running(informer):
        await kube.create(paths.pods_path("default"), pod("p1", step="1"))
        await kube.patch(paths.pod_path("default", "p1"), {"metadata": {"labels": {"step": "2"}}})
        await kube.delete(paths.pod_path("default", "p1"), grace_period_seconds=0)
        await eventually(lambda: seen.has("DELETED", "p1"), what="DELETED p1")
    assert seen.events == [
        ("ADDED", "p1", {"step": "1"}, None, True),
        ("MODIFIED", "p1", {"step": "2"}, {"step": "1"}, True),
        ("DELETED", "p1", {"step": "2"}, {"step": "2"}, True),
    ]
    assert informer.get("default/p1") is None


async def test_watch_resumes_after_the_server_closes_it(tmp_path: Path) -> None:
    """When the server ends each watch after 1 s, the informer re-watches from its version without relisting."""
    async with running_sandbox(tmp_path / "s", watch_timeout_seconds=1) as sandbox, \
            await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as kube:
        seen = Seen()
        informer = pod_informer(kube, seen)
        async with running(informer):
            await eventually(lambda: _true(informer.watches >= 3), what="three watch streams")
            await kube.create(paths.pods_path("default"), pod("late"))
            await eventually(lambda: seen.has("ADDED", "late"), what="ADDED late")
        assert informer.relists == 1
        assert seen.kinds("late") == ["ADDED"]


async def test_relist_after_410_synthesizes_the_missed_changes(tmp_path: Path) -> None:
    """Restarted after history moved past its version, the informer relists and reports the difference."""
    async with running_sandbox(tmp_path / "s", watch_history=100) as sandbox, \
            await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as kube:
        for name in ("keep", "gone", "same"):
            await kube.create(paths.pods_path("default"), pod(name, n="0"))
        seen = Seen()
        informer = pod_informer(kube, seen)
        async with running(informer):
            pass  # listed, then stopped: its cache and resourceVersion stay
        await kube.delete(paths.pod_path("default", "gone"), grace_period_seconds=0)
        for n in range(1, 111):
            await kube.patch(paths.pod_path("default", "keep"), {"metadata": {"labels": {"n": str(n)}}})
        await kube.create(paths.pods_path("default"), pod("new"))
        seen.events.clear()
        async with running(informer):
            await eventually(lambda: seen.has("ADDED", "new"), what="relist delivered")
        assert informer.relists == 2
        assert sorted((kind, name) for kind, name, *_ in seen.events) == [
            ("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "keep")]
        assert informer.get("default/keep")["metadata"]["labels"] == {"n": "110"}  # type: ignore[index]
        assert informer.keys() == {"default/keep", "default/same", "default/new"}


async def test_field_selector_limits_the_informer_to_one_nodes_pods(kube: KubeClient) -> None:
    """With fieldSelector spec.nodeName=x, pods bound to other nodes are never seen."""
    await kube.create(paths.pods_path("default"), pod("on-x", node="x"))
    await kube.create(paths.pods_path("default"), pod("on-y", node="y"))
    seen = Seen()
    informer = pod_informer(kube, seen, field_selector="spec.nodeName=x")
    async with running(informer):
        await kube.create(paths.pods_path("default"), pod("later-y", node="y"))
        await kube.create(paths.pods_path("default"), pod("later-x", node="x"))
        await eventually(lambda: seen.has("ADDED", "later-x"), what="ADDED later-x")
    assert [(kind, name) for kind, name, *_ in seen.events] == [("ADDED", "on-x"), ("ADDED", "later-x")]
    assert informer.keys() == {"default/on-x", "default/later-x"}


async def test_an_unreachable_server_deletes_nothing_and_the_watch_recovers(tmp_path: Path) -> None:
    """While the API server cannot be reached the cache is kept; once back, new changes flow again."""
    async with running_sandbox(tmp_path / "s", watch_timeout_seconds=1) as sandbox, \
            await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as kube:
        await kube.create(paths.pods_path("default"), pod("p1"))
        seen = Seen()
        informer = pod_informer(kube, seen)
        async with running(informer):
            real_host, kube.host = kube.host, "https://127.0.0.1:1"
            attempts = informer.watches
            await eventually(lambda: _true(informer.watches >= attempts + 3), what="failing re-watches")
            assert informer.keys() == {"default/p1"}
            kube.host = real_host
            await kube.create(paths.pods_path("default"), pod("p2"))
            await eventually(lambda: seen.has("ADDED", "p2"), what="ADDED p2")
        assert "DELETED" not in [kind for kind, *_ in seen.events]
        assert informer.relists == 1


async def test_a_failing_handler_does_not_stop_the_informer(kube: KubeClient) -> None:
    """An exception from the handler is logged; later events are still delivered."""
    delivered: list[str] = []

    def handler(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        delivered.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "bad":
            raise RuntimeError("handler bug")

    informer = Informer(kube, paths.pods_path(), on_event=handler, clock=SystemClock())
    async with running(informer):
        await kube.create(paths.pods_path("default"), pod("bad"))
        await kube.create(paths.pods_path("default"), pod("good"))
        await eventually(lambda: _true("good" in delivered), what="event after the failing one")


async def _true(value: bool) -> bool:
    return value
