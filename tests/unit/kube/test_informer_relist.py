"""Informer relists against a scripted client: only a complete, well-formed list may report deletions.

The sandbox cannot be made to send malformed lists or fail mid-pagination, so these drive the informer through a
stub with KubeClient's list/watch shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

from vnode.clock import SystemClock
from vnode.errors import ApiServerUnavailable, Expired
from vnode.kube.client import KubeClient
from vnode.kube.informer import Informer
from vnode.kube.ratelimit import Backoff

Obj = dict[str, Any]


def obj(name: str, rv: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "d", "uid": f"uid-{name}", "resourceVersion": rv}}


def page(rv: str, *items: Obj, more: str | None = None) -> Obj:
    meta: Obj = {"resourceVersion": rv}
    if more:
        meta["continue"] = more
    return {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": list(items)}


class ScriptedClient:
    """Answers list calls from `lists` in order; each watch raises Expired until `lists` runs dry, then idles."""

    def __init__(self, *lists: Obj | Exception) -> None:
        self.lists = list(lists)
        self.list_params: list[Obj] = []
        self.idle = asyncio.Event()

    async def list(self, path: str, params: Obj) -> Obj:
        self.list_params.append(dict(params))
        answer = self.lists.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def watch(self, path: str, params: Obj) -> AsyncGenerator[Obj, None]:
        if self.lists:
            raise Expired("too old resource version")
        self.idle.set()
        await asyncio.Event().wait()
        yield {}


async def run_until_idle(client: ScriptedClient) -> list[tuple[str, str, int]]:
    """Run an informer until the script is used up; returns (kind, name, lists left when delivered)."""
    seen: list[tuple[str, str, int]] = []
    informer = Informer(cast(KubeClient, client), "/api/v1/pods", clock=SystemClock(), page_size=1,
                        backoff=Backoff(0.001, 0.01),
                        on_event=lambda kind, o, old: seen.append((kind, o["metadata"]["name"], len(client.lists))))
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(client.idle.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen


async def test_a_list_without_items_deletes_nothing() -> None:
    """A relist answer with no `items` is treated as an error; only the next complete list reports B gone."""
    client = ScriptedClient(page("10", obj("a", "1"), obj("b", "2")),
                            {"kind": "PodList", "metadata": {"resourceVersion": "11"}},
                            page("12", obj("a", "1")))
    seen = await run_until_idle(client)
    assert seen == [("ADDED", "a", 2), ("ADDED", "b", 2), ("DELETED", "b", 0)]


async def test_a_relist_that_fails_on_a_later_page_deletes_nothing() -> None:
    """Objects on a page that never arrived are not reported deleted; the retried relist finds them unchanged."""
    client = ScriptedClient(page("10", obj("a", "1"), more="p2"), page("10", obj("b", "2")),
                            page("20", obj("a", "1"), more="p2"), ApiServerUnavailable("connection reset"),
                            page("21", obj("a", "1"), more="p2"), page("21", obj("b", "2")))
    seen = await run_until_idle(client)
    assert [(kind, name) for kind, name, _ in seen] == [("ADDED", "a"), ("ADDED", "b")]


async def test_an_expired_continue_token_falls_back_to_one_full_list() -> None:
    """410 on a continuation restarts the list without `limit`, as client-go does."""
    client = ScriptedClient(page("10", obj("a", "1"), more="p2"), Expired("continue token expired"),
                            page("12", obj("a", "1"), obj("b", "2")))
    seen = await run_until_idle(client)
    assert [(kind, name) for kind, name, _ in seen] == [("ADDED", "a"), ("ADDED", "b")]
    assert "limit" in client.list_params[0]
    assert "limit" not in client.list_params[2] and "continue" not in client.list_params[2]


async def test_a_recreated_object_is_reported_as_delete_then_add() -> None:
    """Same name, new UID across a relist: DELETED for the old object, then ADDED for the new one."""
    recreated = obj("a", "5")
    recreated["metadata"]["uid"] = "uid-a2"
    client = ScriptedClient(page("10", obj("a", "1")), page("12", recreated))
    seen = await run_until_idle(client)
    assert [(kind, name) for kind, name, _ in seen] == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a")]
