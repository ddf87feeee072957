"""`Informer`: list+watch of one resource collection into a local cache of JSON dicts, with change callbacks.

Owns client-go's reflector contract: a paginated list, then a watch from the list's resourceVersion that resumes
from the last version seen (bookmarks included) whenever the stream ends, backoff on errors, and a relist on 410
whose differences are delivered as synthesized events. It must never report a deletion it has not seen: errors,
malformed responses and unfinished relists change nothing. It does not queue or retry work for its consumers.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Literal

from vnode.clock import Clock
from vnode.errors import ApiServerUnavailable, Expired, Throttled, VnodeError
from vnode.kube.client import JsonObj, KubeClient
from vnode.kube.compact import CompactCache
from vnode.kube.ratelimit import Backoff

log = logging.getLogger(__name__)

EventKind = Literal["ADDED", "MODIFIED", "DELETED"]
Handler = Callable[[EventKind, JsonObj, JsonObj | None], None]
# A watch that ends sooner than this without delivering anything counts as a failure (client-go's rule).
SHORT_WATCH_SECONDS = 1.0


def key_of(obj: JsonObj) -> str:
    """client-go's MetaNamespaceKeyFunc: `namespace/name`, or `name` for cluster-scoped objects."""
    meta = obj["metadata"]
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def _meta(obj: JsonObj, field: str) -> str | None:
    value = obj.get("metadata", {}).get(field)
    return None if value is None else str(value)


def _rv(obj: JsonObj) -> str | None:
    return _meta(obj, "resourceVersion")


def _uid(obj: JsonObj) -> str | None:
    return _meta(obj, "uid")


class Informer:
    """Keeps a cache of one collection in step with the server; calls `on_event(kind, obj, old)` per change.

    The handler runs on the informer's own task, after the cache has changed, in the server's order; it must not
    block, await, or mutate the dicts. `old` is the cached object before the change (None for ADDED). DELETED
    carries the watch's final object, or the last cached one when a relist found the object gone.
    """

    def __init__(self, client: KubeClient, path: str, *, on_event: Handler, clock: Clock,
                 field_selector: str | None = None, label_selector: str | None = None, page_size: int = 500,
                 watch_timeout_seconds: int = 300, backoff: Backoff | None = None, name: str | None = None) -> None:
        self._client = client
        self._path = path
        self._on_event = on_event
        self._clock = clock
        self._selectors = {k: v for k, v in (("fieldSelector", field_selector),
                                             ("labelSelector", label_selector)) if v}
        self._page_size = page_size
        self._watch_timeout = watch_timeout_seconds
        self._backoff = backoff or Backoff(0.8, 30.0)
        self._rng = random.Random()
        self.name = name or path
        self._cache = CompactCache()
        self._running = False
        # Set once the first complete list has been delivered to the handler; stays set afterwards.
        self.ready = asyncio.Event()
        # The version the next watch resumes from: the list's, then each event's and bookmark's.
        self.resource_version: str | None = None
        # Counters for metrics and tests: complete lists taken, watch streams opened.
        self.relists = 0
        self.watches = 0

    # The cache (each read decodes a fresh copy)

    def get(self, key: str) -> JsonObj | None:
        return self._cache.get(key)

    def keys(self) -> set[str]:
        return set(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    # Running

    async def run(self) -> None:
        """List, then watch forever; ends only by cancellation. Restarting resumes from `resource_version`."""
        if self._running:
            raise RuntimeError(f"informer {self.name} is already running")
        self._running = True
        try:
            while True:
                try:
                    if self.resource_version is None:
                        await self._relist()
                    await self._watch_once()
                    self._backoff.reset()
                except Expired as exc:
                    # 410: our resourceVersion left the server's window; only a fresh list can resync.
                    log.info("informer %s: %s; relisting", self.name, exc)
                    await self._relist_or_back_off()
                except VnodeError as exc:
                    await self._back_off(exc)
        finally:
            self._running = False

    async def _relist_or_back_off(self) -> None:
        try:
            await self._relist()
        except VnodeError as exc:
            # The stale version is kept: the next turn will hit 410 again and relist again, after this backoff.
            await self._back_off(exc)

    async def _back_off(self, exc: VnodeError) -> None:
        delay = self._backoff.next_delay()
        if isinstance(exc, Throttled) and exc.retry_after_seconds:
            delay = max(delay, exc.retry_after_seconds)
        log.warning("informer %s: %s (attempt %d); retrying in %.1f s", self.name, exc, self._backoff.attempt,
                    delay)
        await self._clock.sleep(delay)

    async def _list_all(self) -> tuple[dict[str, JsonObj], str]:
        """Every page into a new dict; raises (and changes nothing) unless the whole list arrived intact."""
        params: dict[str, str | int] = {**self._selectors, "limit": self._page_size}
        items: dict[str, JsonObj] = {}
        version: str | None = None
        token: str | None = None
        while True:
            try:
                page = await self._client.list(self._path, {**params, "continue": token} if token else params)
            except Expired:
                if token is None:
                    raise
                # The continue token aged out mid-list: like client-go, fall back to one unpaginated list.
                log.info("informer %s: list continuation expired; listing without pages", self.name)
                params.pop("limit", None)
                items, version, token = {}, None, None
                continue
            meta, page_items = page.get("metadata"), page.get("items")
            if not isinstance(meta, dict) or not meta.get("resourceVersion") or not isinstance(page_items, list):
                raise ApiServerUnavailable(f"informer {self.name}: malformed list (no items or resourceVersion)")
            # The first page's version: watching from it replays anything the later pages might have missed.
            version = version or str(meta["resourceVersion"])
            item_kind = str(page.get("kind", "")).removesuffix("List")
            for obj in page_items:
                # List items omit kind/apiVersion; watch objects carry them. Fill them in so both look alike.
                obj.setdefault("kind", item_kind)
                obj.setdefault("apiVersion", page.get("apiVersion"))
                items[key_of(obj)] = obj
            token = meta.get("continue") or None
            if token is None:
                return items, version

    async def _relist(self) -> None:
        fresh, version = await self._list_all()
        old, self._cache = self._cache, CompactCache(fresh)
        self.relists += 1
        previous_objects = dict(old.items())
        for key, previous in previous_objects.items():
            current = fresh.get(key)
            if current is None or _uid(current) != _uid(previous):
                self._emit("DELETED", previous, previous)
        for key, obj in fresh.items():
            before = previous_objects.get(key)
            if before is None or _uid(obj) != _uid(before):
                self._emit("ADDED", obj, None)
            elif _rv(obj) != _rv(before):
                self._emit("MODIFIED", obj, before)
        self.resource_version = version
        self.ready.set()
        log.debug("informer %s: listed %d objects at resourceVersion %s", self.name, len(fresh), version)

    async def _watch_once(self) -> None:
        """One watch stream from `resource_version` until it ends; raises what broke it."""
        params: dict[str, str | int | bool] = {
            **self._selectors, "resourceVersion": self.resource_version or "", "allowWatchBookmarks": True,
            # Spread out reconnects of many clients, as client-go does (timeout in [t, 2t)).
            "timeoutSeconds": int(self._watch_timeout * (1 + self._rng.random()))}
        started = self._clock.monotonic()
        delivered = 0
        self.watches += 1
        async with contextlib.aclosing(self._client.watch(self._path, params)) as events:
            async for event in events:
                if not delivered:
                    self._backoff.reset()  # the server is serving us again
                delivered += 1
                self._apply(event)
        if not delivered and self._clock.monotonic() - started < SHORT_WATCH_SECONDS:
            raise ApiServerUnavailable(f"informer {self.name}: watch ended at once without events")

    def _apply(self, event: JsonObj) -> None:
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            log.warning("informer %s: ignoring watch event without an object: %.200s", self.name, event)
            return
        version = _rv(obj)
        if kind == "BOOKMARK":
            pass  # carries only a resourceVersion to resume from
        elif kind in ("ADDED", "MODIFIED"):
            self._upsert(obj)
        elif kind == "DELETED":
            previous = self._cache.pop(key_of(obj))
            if previous is not None:
                self._emit("DELETED", obj, previous)
        else:
            log.warning("informer %s: ignoring watch event of type %s", self.name, kind)
        if version:
            self.resource_version = version

    def _upsert(self, obj: JsonObj) -> None:
        # managedFields are server-side apply bookkeeping nobody here reads; in real clusters they are a large
        # share of every object, so the cache drops them (client-go's TransformStripManagedFields).
        obj.get("metadata", {}).pop("managedFields", None)
        key = key_of(obj)
        previous = self._cache.get(key)
        if previous is not None and _rv(previous) == _rv(obj):
            return  # replayed after a resume: already delivered
        self._cache[key] = obj
        if previous is None:
            self._emit("ADDED", obj, None)
        elif _uid(previous) != _uid(obj):
            # Deleted and recreated under the same name while we were not looking: two objects, two events.
            self._emit("DELETED", previous, previous)
            self._emit("ADDED", obj, None)
        else:
            self._emit("MODIFIED", obj, previous)

    def _emit(self, kind: EventKind, obj: JsonObj, old: JsonObj | None) -> None:
        try:
            self._on_event(kind, obj, old)
        except Exception:
            log.exception("informer %s: handler failed on %s %s", self.name, kind, key_of(obj))

    # Defined last: inside the class body, `list` would otherwise shadow the builtin in annotations.
    def list(self) -> builtins.list[JsonObj]:
        return builtins.list(self._cache.values())
