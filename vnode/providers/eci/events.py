"""ECI's container group events → `ProviderEvent`s, each told once.

DescribeContainerGroupEvents answers with every event of the last `SinceSecond` seconds (at least 60), so polls
overlap: an event is new when its (reason, message, firstTimestamp) has not been seen for that group, or when its
`Count` grew (ECI folds repeats into one event, as Kubernetes does). Keys are read without regard to case: both
UpperCamel and lowerCamel answers exist (eci-wire.md §3). Also picks the image cache a group matched out of its
events. Must not call ECI.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from vnode.providers.base import ProviderEvent
from vnode.providers.eci.status import ci, ci_list, integer, text

# ECI reports a matched image cache as an event naming its id, e.g. reason SuccessfulHitImageCache
# "Successfully hit image cache imc-2ze…, eci will be scheduled with this image cache." [unverified]
_IMAGE_CACHE_ID = re.compile(r"\bimc-[0-9a-z]+\b")
EventKey = tuple[str, str, str]


class EventDedup:
    """What was already told, per group: (reason, message, firstTimestamp) → the count told."""

    def __init__(self) -> None:
        self._told: dict[str, dict[EventKey, int]] = {}

    def fresh(self, group_id: str, events: Iterable[Any]) -> list[ProviderEvent]:
        """The events of one group's answer not told yet, oldest first as ECI lists them."""
        told = self._told.get(group_id, {})
        current: dict[EventKey, int] = {}
        out: list[ProviderEvent] = []
        for raw in events:
            event = ci(raw)
            reason, message = text(event, "reason"), text(event, "message")
            key = (reason, message, text(event, "firsttimestamp"))
            count = max(integer(event.get("count"), 1), 1)
            current[key] = max(count, current.get(key, 0))
            if count > told.get(key, 0):
                warning = text(event, "type").lower() == "warning"
                out.append(ProviderEvent("Warning" if warning else "Normal", reason or "ECIEvent", message))
                told[key] = count
        # Events that left the window never come back unchanged: keeping this answer's keys bounds the memory to
        # ECI's 50 events per group.
        self._told[group_id] = {key: max(count, told.get(key, 0)) for key, count in current.items()}
        return out

    def forget(self, group_id: str) -> None:
        self._told.pop(group_id, None)


def groups_events(answer: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    """(group id, its events) for each `Data` item of a DescribeContainerGroupEvents answer."""
    return [(text(item, "containergroupid"), ci_list(item.get("events"))) for item in ci_list(ci(answer).get("data"))]


def matched_image_cache(events: Iterable[ProviderEvent]) -> str | None:
    for event in events:
        if "imagecache" in event.reason.lower():
            found = _IMAGE_CACHE_ID.search(event.message)
            if found:
                return found.group(0)
    return None
