"""ECI events → ProviderEvents told once across overlapping SinceSecond windows, in either key casing."""

from __future__ import annotations

from typing import Any

from vnode.providers.base import ProviderEvent
from vnode.providers.eci.events import EventDedup, groups_events, matched_image_cache

PULLING = {"Count": 1, "Type": "Normal", "Reason": "Pulling", "Message": 'pulling image "busybox"',
           "FirstTimestamp": "2026-01-01T10:00:00Z", "LastTimestamp": "2026-01-01T10:00:00Z"}
SPOT = {"count": 1, "type": "Warning", "reason": "SpotToBeReleased", "message": "Spot ECI will be released in 3 "
        "minutes", "firstTimestamp": "2026-01-01T10:00:30Z", "lastTimestamp": "2026-01-01T10:00:30Z"}


def test_an_event_seen_in_overlapping_windows_is_told_once() -> None:
    dedup = EventDedup()
    assert dedup.fresh("eci-1", [PULLING]) == [ProviderEvent("Normal", "Pulling", 'pulling image "busybox"')]
    assert dedup.fresh("eci-1", [PULLING, SPOT]) == [
        ProviderEvent("Warning", "SpotToBeReleased", "Spot ECI will be released in 3 minutes")]
    assert dedup.fresh("eci-1", [PULLING, SPOT]) == []


def test_a_repeated_event_is_told_again_when_its_count_grows() -> None:
    dedup = EventDedup()
    dedup.fresh("eci-1", [PULLING])
    assert dedup.fresh("eci-1", [{**PULLING, "Count": 3}]) == [
        ProviderEvent("Normal", "Pulling", 'pulling image "busybox"')]
    assert dedup.fresh("eci-1", [{**PULLING, "Count": 3}]) == []


def test_the_same_event_of_another_group_is_its_own() -> None:
    dedup = EventDedup()
    dedup.fresh("eci-1", [PULLING])
    assert len(dedup.fresh("eci-2", [PULLING])) == 1


def test_a_forgotten_group_starts_afresh() -> None:
    dedup = EventDedup()
    dedup.fresh("eci-1", [PULLING])
    dedup.forget("eci-1")
    assert len(dedup.fresh("eci-1", [PULLING])) == 1


def test_answers_are_read_in_either_casing() -> None:
    answer: dict[str, Any] = {"RequestId": "r", "Data": [{"ContainerGroupId": "eci-1", "Events": [PULLING]}]}
    lower: dict[str, Any] = {"requestId": "r", "data": [{"containerGroupId": "eci-2", "events": [SPOT]}]}
    assert [(gid, len(events)) for gid, events in groups_events(answer)] == [("eci-1", 1)]
    assert [(gid, len(events)) for gid, events in groups_events(lower)] == [("eci-2", 1)]


def test_the_matched_image_cache_comes_from_its_event() -> None:
    hit = ProviderEvent("Normal", "SuccessfulHitImageCache", "Successfully hit image cache imc-2ze0abc1, eci will "
                        "be scheduled with this image cache.")
    assert matched_image_cache([ProviderEvent("Normal", "Pulling", "imc-nothere"), hit]) == "imc-2ze0abc1"
