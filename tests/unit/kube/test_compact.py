"""The informer's compact cache: objects stored encoded, every read a private copy."""

from __future__ import annotations

from vnode.kube.compact import CompactCache


def test_reads_return_equal_but_independent_copies() -> None:
    """Mutating what get() returned does not change the cache."""
    cache = CompactCache({"ns/a": {"metadata": {"name": "a", "labels": {"x": "1"}}}})
    first = cache.get("ns/a")
    assert first == {"metadata": {"name": "a", "labels": {"x": "1"}}}
    first["metadata"]["labels"]["x"] = "changed"
    assert cache.get("ns/a") == {"metadata": {"name": "a", "labels": {"x": "1"}}}


def test_pop_removes_and_returns_the_object() -> None:
    """pop() gives the object back once; a missing key gives None."""
    cache = CompactCache()
    cache["k"] = {"v": 1}
    assert cache.pop("k") == {"v": 1}
    assert cache.pop("k") is None and len(cache) == 0 and "k" not in cache


def test_items_and_values_decode_everything() -> None:
    """items() and values() see every stored object."""
    cache = CompactCache({"a": {"n": 1}, "b": {"n": 2}})
    assert dict(cache.items()) == {"a": {"n": 1}, "b": {"n": 2}}
    assert sorted(v["n"] for v in cache.values()) == [1, 2]
    assert set(cache) == {"a", "b"}
