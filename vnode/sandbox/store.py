"""The sandbox's storage: objects by resource, one monotonic resourceVersion, a bounded event history, watchers.

It plays etcd plus kube-apiserver's watch cache: every write takes the next resourceVersion, is appended to its
resource's history, and is fanned out to watchers. It knows nothing of Kubernetes semantics beyond metadata
(name, namespace, uid, resourceVersion); strategies and preconditions live in `registry.py`.
Stored dicts are never mutated after they are written: callers copy before changing.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vnode.sandbox import status

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects


@dataclass(eq=False)
class StoredEvent:
    type: str  # ADDED, MODIFIED or DELETED
    object: Obj
    previous: Obj | None
    resource_version: int
    _encoded: bytes | None = None

    def encoded(self) -> bytes:
        """The watch frame for this event, encoded once and shared by every JSON watcher."""
        if self._encoded is None:
            self._encoded = json.dumps({"type": self.type, "object": self.object}).encode() + b"\n"
        return self._encoded


@dataclass(eq=False)
class Watcher:
    namespace: str | None
    matches: Callable[[Obj], bool]
    max_pending: int
    queue: asyncio.Queue[StoredEvent | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, event: StoredEvent) -> None:
        """Queue what this watcher should see of `event`; a selector-scoped watcher sees objects leave as DELETED
        and enter as ADDED, as kube-apiserver's cacher does."""
        if self.overflowed:
            return
        ns = event.object["metadata"].get("namespace", "")
        if self.namespace is not None and ns != self.namespace:
            return
        now_matches = event.type != "DELETED" and self.matches(event.object)
        before = event.previous
        was_matching = before is not None and self.matches(before)
        if event.type == "DELETED":
            was_matching = self.matches(event.object)
            if not was_matching:
                return
            self._put(event)
        elif now_matches and (was_matching or event.type == "ADDED"):
            self._put(event)
        elif now_matches:
            self._put(StoredEvent("ADDED", event.object, None, event.resource_version))
        elif was_matching:
            self._put(StoredEvent("DELETED", event.object, None, event.resource_version))

    def _put(self, event: StoredEvent) -> None:
        if self.queue.qsize() >= self.max_pending:
            # A watcher too slow to keep up is closed, like kube-apiserver's cacher does; the client re-watches
            # from its last resourceVersion.
            self.overflowed = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(event)


class _Bucket:
    """Everything stored for one resource type."""

    def __init__(self, history_size: int) -> None:
        self.objects: dict[ObjKey, Obj] = {}
        self.history: deque[StoredEvent] = deque()
        self.history_size = history_size
        # The newest resourceVersion no longer in history: a watch must start at or after it.
        self.compacted_rv = 0
        self.watchers: set[Watcher] = set()


class Store:
    def __init__(self, *, history_size: int = 20_000, watcher_max_pending: int = 50_000) -> None:
        self._rv = 1
        self._history_size = history_size
        self._watcher_max_pending = watcher_max_pending
        self._buckets: dict[str, _Bucket] = {}

    @property
    def resource_version(self) -> int:
        return self._rv

    def _bucket(self, key: str) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._history_size)
        return bucket

    # Reads

    def get(self, key: str, namespace: str, name: str) -> Obj | None:
        return self._bucket(key).objects.get((namespace, name))

    def iterate(self, key: str, namespace: str | None = None) -> Iterator[Obj]:
        """Objects of one type, optionally in one namespace, ordered by (namespace, name) like etcd keys."""
        objects = self._bucket(key).objects
        for obj_key in sorted(objects):
            if namespace is None or obj_key[0] == namespace:
                yield objects[obj_key]

    def count(self, key: str) -> int:
        return len(self._bucket(key).objects)

    # Writes: each takes the next resourceVersion and notifies watchers.

    def create(self, key: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        obj_key = (meta.get("namespace", ""), meta["name"])
        bucket = self._bucket(key)
        if obj_key in bucket.objects:
            raise KeyError(obj_key)
        return self._commit(bucket, "ADDED", obj_key, obj, None)

    def replace(self, key: str, obj: Obj) -> Obj:
        meta = obj["metadata"]
        obj_key = (meta.get("namespace", ""), meta["name"])
        bucket = self._bucket(key)
        previous = bucket.objects.get(obj_key)
        if previous is None:
            raise KeyError(obj_key)
        return self._commit(bucket, "MODIFIED", obj_key, obj, previous)

    def remove(self, key: str, namespace: str, name: str) -> Obj:
        bucket = self._bucket(key)
        previous = bucket.objects.pop((namespace, name))
        # The DELETED event carries the object with the deletion's own resourceVersion, as etcd3 watch does.
        final = {**previous, "metadata": {**previous["metadata"]}}
        return self._commit(bucket, "DELETED", (namespace, name), final, previous)

    def _commit(self, bucket: _Bucket, kind: str, obj_key: ObjKey, obj: Obj, previous: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        if kind != "DELETED":
            bucket.objects[obj_key] = obj
        event = StoredEvent(kind, obj, previous, self._rv)
        bucket.history.append(event)
        if len(bucket.history) > bucket.history_size:
            bucket.compacted_rv = bucket.history.popleft().resource_version
        for watcher in bucket.watchers:
            watcher.offer(event)
        return obj

    # Watches

    def watch(self, key: str, *, namespace: str | None, matches: Callable[[Obj], bool],
              since: int | None) -> Watcher:
        """Register a watcher. With `since`, replay history after that resourceVersion first (410 if compacted);
        without it, replay the current objects as ADDED, as a watch with no resourceVersion does."""
        bucket = self._bucket(key)
        watcher = Watcher(namespace, matches, self._watcher_max_pending)
        if since is None:
            for obj in self.iterate(key, namespace):
                if matches(obj):
                    watcher.queue.put_nowait(StoredEvent("ADDED", obj, None, int(obj["metadata"]["resourceVersion"])))
        else:
            if since < bucket.compacted_rv:
                raise status.expired(f"too old resource version: {since} ({bucket.compacted_rv})")
            for event in bucket.history:
                if event.resource_version > since:
                    watcher.offer(event)
        bucket.watchers.add(watcher)
        return watcher

    def unwatch(self, key: str, watcher: Watcher) -> None:
        self._bucket(key).watchers.discard(watcher)

    def oldest_watchable(self, key: str) -> int:
        return self._bucket(key).compacted_rv
