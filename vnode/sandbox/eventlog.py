"""Events written by the sandbox's own controllers (scheduler, node lifecycle), aggregated like client-go's
recorder: a repeat of the same reason and message on the same object bumps `count` and `lastTimestamp`.
"""

from __future__ import annotations

import copy
import hashlib
import uuid

from vnode.clock import Clock, rfc3339
from vnode.sandbox.store import Obj, Store


class EventLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def record(self, about: Obj, event_type: str, reason: str, message: str, *, component: str) -> None:
        meta = about["metadata"]
        namespace = meta.get("namespace") or "default"
        digest = hashlib.sha1(f"{meta.get('uid')}/{reason}/{message}".encode()).hexdigest()[:12]
        name = f"{meta['name']}.{digest}"
        now = rfc3339(self._clock.now())
        existing = self._store.get("events", namespace, name)
        if existing is not None:
            updated = copy.deepcopy(existing)
            updated["count"] = int(existing.get("count") or 1) + 1
            updated["lastTimestamp"] = now
            self._store.replace("events", updated)
            return
        self._store.create("events", {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), "creationTimestamp": now},
            "involvedObject": {
                "kind": about.get("kind"), "apiVersion": about.get("apiVersion"), "name": meta["name"],
                "namespace": meta.get("namespace", ""), "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": event_type,
            "reportingComponent": component,
            "reportingInstance": "",
        })
