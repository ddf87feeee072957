"""The store: resourceVersions, history, and what each watcher sees."""

from __future__ import annotations

import pytest

from vnode.sandbox import status
from vnode.sandbox.store import Store


def pod(name: str, node: str = "", ns: str = "default") -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node}}


def on_node(node: str):
    return lambda obj: obj["spec"].get("nodeName") == node


def test_every_write_takes_the_next_resource_version() -> None:
    """Writes across resource types share one increasing resourceVersion."""
    store = Store()
    first = store.create("pods", pod("a"))
    second = store.create("configmaps", {"metadata": {"name": "c", "namespace": "default"}})
    third = store.replace("pods", pod("a", "n1"))
    versions = [int(o["metadata"]["resourceVersion"]) for o in (first, second, third)]
    assert versions == sorted(versions) and len(set(versions)) == 3


def test_create_of_an_existing_name_raises() -> None:
    """Names are unique per namespace and type."""
    store = Store()
    store.create("pods", pod("a"))
    store.create("pods", pod("a", ns="other"))
    with pytest.raises(KeyError):
        store.create("pods", pod("a"))


def test_watch_from_a_version_replays_only_later_events() -> None:
    """A watch from resourceVersion N gets the events after N, in order."""
    store = Store()
    created = store.create("pods", pod("a"))
    store.replace("pods", pod("a", "n1"))
    store.remove("pods", "default", "a")
    watcher = store.watch("pods", namespace=None, matches=lambda o: True,
                          since=int(created["metadata"]["resourceVersion"]))
    seen = [watcher.queue.get_nowait().type for _ in range(watcher.queue.qsize())]
    assert seen == ["MODIFIED", "DELETED"]


def test_watch_without_a_version_replays_current_objects_as_added() -> None:
    """No resourceVersion: the current state arrives as ADDED events first."""
    store = Store()
    store.create("pods", pod("b"))
    store.create("pods", pod("a"))
    watcher = store.watch("pods", namespace=None, matches=lambda o: True, since=None)
    names = [watcher.queue.get_nowait().object["metadata"]["name"] for _ in range(2)]
    assert names == ["a", "b"]


def test_selector_watch_sees_objects_enter_and_leave() -> None:
    """An object that starts matching arrives as ADDED; one that stops matching leaves as DELETED."""
    store = Store()
    store.create("pods", pod("a"))
    watcher = store.watch("pods", namespace=None, matches=on_node("n1"), since=store.resource_version)
    store.replace("pods", pod("a", "n1"))
    store.replace("pods", pod("a", "n2"))
    seen = [watcher.queue.get_nowait().type for _ in range(watcher.queue.qsize())]
    assert seen == ["ADDED", "DELETED"]


def test_compacted_history_expires_old_versions() -> None:
    """Once history has been trimmed past N, watching from N is 410 Expired."""
    store = Store(history_size=3)
    first = store.create("pods", pod("a"))
    for node in ("n1", "n2", "n3", "n4"):
        store.replace("pods", pod("a", node))
    with pytest.raises(status.ApiError) as caught:
        store.watch("pods", namespace=None, matches=lambda o: True, since=int(first["metadata"]["resourceVersion"]))
    assert caught.value.code == 410


def test_a_watcher_that_falls_behind_is_closed() -> None:
    """A watcher with too many undelivered events is ended (None) rather than growing without bound."""
    store = Store(watcher_max_pending=2)
    watcher = store.watch("pods", namespace=None, matches=lambda o: True, since=store.resource_version)
    for name in ("a", "b", "c", "d"):
        store.create("pods", pod(name))
    items = [watcher.queue.get_nowait() for _ in range(watcher.queue.qsize())]
    assert items[-1] is None and len(items) == 3
