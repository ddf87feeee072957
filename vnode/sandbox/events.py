"""The two Event APIs over one storage: `events.k8s.io/v1` objects are converted to and from core/v1 Events.

kube-apiserver stores a single Event type and serves both group versions from it; field names differ
(`regarding` is `involvedObject`, `note` is `message`, the `deprecated*` fields are the old core ones).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# events.k8s.io/v1 field → core/v1 field, for the fields whose names differ.
_RENAMED = {
    "regarding": "involvedObject",
    "note": "message",
    "reportingController": "reportingComponent",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
}
_SAME = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")


def core_from_events_v1(event: Obj) -> Obj:
    core: Obj = {"kind": "Event", "apiVersion": "v1"}
    for name in _SAME:
        if name in event:
            core[name] = event[name]
    for new, old in _RENAMED.items():
        if new in event:
            core[old] = event[new]
    return core


def events_v1_from_core(core: Obj) -> Obj:
    event: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for name in _SAME:
        if name in core:
            event[name] = core[name]
    for new, old in _RENAMED.items():
        if old in core:
            event[new] = core[old]
    return event
