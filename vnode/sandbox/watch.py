"""Streaming a watch: newline-delimited `{"type", "object"}` frames, bookmarks, timeouts, initial events.

kube-apiserver's semantics: a watch starts after the given resourceVersion (410 Expired in an ERROR frame once
that version has left the history), or replays the current objects as ADDED when none is given; BOOKMARK frames
carry a resourceVersion the client may resume from; the stream ends after `timeoutSeconds`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from vnode.sandbox import status
from vnode.sandbox.resources import ResourceType
from vnode.sandbox.store import Obj, Store, StoredEvent

# Converts a stored object for this watcher (Table rows, events.k8s.io view); None means the stored JSON as is.
ObjectView = Callable[[Obj], Obj] | None


@dataclass(frozen=True)
class WatchRequest:
    rtype: ResourceType
    storage_key: str
    namespace: str | None
    matches: Callable[[Obj], bool]
    since: int | None
    send_initial_events: bool
    allow_bookmarks: bool
    timeout_seconds: float
    bookmark_interval_seconds: float


def _frame(kind: str, obj: Obj) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def _bookmark(rtype: ResourceType, rv: int, initial_events_end: bool = False) -> bytes:
    meta: Obj = {"resourceVersion": str(rv)}
    if initial_events_end:
        # Marks the end of the initial ADDED events of a `sendInitialEvents=true` watch (streaming lists).
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return _frame("BOOKMARK", {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta})


async def serve_watch(request: web.Request, store: Store, watch: WatchRequest, view: ObjectView) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    try:
        watcher = store.watch(watch.storage_key, namespace=watch.namespace, matches=watch.matches,
                              since=watch.since)
    except status.ApiError as exc:
        # Like kube-apiserver's watch cache: 200, then a single ERROR frame with the Status (410 Expired).
        await response.prepare(request)
        await response.write(_frame("ERROR", exc.to_status()))
        return response
    # The replayed objects are queued already; the initial-events bookmark follows the last of them.
    initial_left = watcher.queue.qsize() if watch.send_initial_events else -1
    initial_rv = store.resource_version
    loop = asyncio.get_running_loop()
    deadline = loop.time() + watch.timeout_seconds
    try:
        await response.prepare(request)
        if initial_left == 0:
            await response.write(_bookmark(watch.rtype, initial_rv, True))
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            wait = min(remaining, watch.bookmark_interval_seconds) if watch.allow_bookmarks else remaining
            try:
                async with asyncio.timeout(wait):  # not wait_for: it can lose a cancellation on 3.11
                    event = await watcher.queue.get()
            except TimeoutError:
                if watch.allow_bookmarks and watcher.queue.empty():
                    await response.write(_bookmark(watch.rtype, store.resource_version))
                continue
            if event is None:
                break  # overflowed: the client resumes from its last resourceVersion
            await response.write(_encode(event, view))
            initial_left -= 1
            if initial_left == 0:
                await response.write(_bookmark(watch.rtype, initial_rv, True))
    except ConnectionResetError:
        pass  # the client went away: the watch simply ends
    finally:
        store.unwatch(watch.storage_key, watcher)
    return response


def _encode(event: StoredEvent, view: ObjectView) -> bytes:
    if view is None:
        return event.encoded()
    return _frame(event.type, view(event.object))
