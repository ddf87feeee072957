"""ECI events → ProviderEvents told once across overlapping SinceSecond windows, in either key casing; the
polling window; shape attempts and ClientTokens of a create."""

from __future__ import annotations

from typing import Any

from vnode.providers.base import ProviderEvent
from vnode.providers.eci.events import EventDedup, groups_events, matched_image_cache
from vnode.providers.eci.poller import window_seconds
from vnode.providers.eci.provider import attempts, client_token
from vnode.providers.eci.translate import CreatePlan, GroupShape, SpotPlan

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


def test_polling_windows_cover_the_gap_since_the_last_successful_poll() -> None:
    assert window_seconds(None, 100.0) is None  # first poll: everything
    assert window_seconds(95.0, 100.0) == 60  # ECI's minimum
    assert window_seconds(0.0, 300.0) == 305  # a longer outage widens it
    assert window_seconds(0.0, 4000.0) is None  # beyond ECI's 3600 s: a full list


def plan(shapes: tuple[GroupShape, ...], spot: SpotPlan | None) -> CreatePlan:
    return CreatePlan(name="p", params={}, shapes=shapes, spot=spot, fail_on_create_error=False)


def test_spot_shapes_come_first_then_pay_as_you_go_when_the_fallback_is_allowed() -> None:
    small, large = GroupShape(2, 4), GroupShape(4, 8)
    spot = SpotPlan("SpotAsPriceGo", None, None, fallback=True)
    assert attempts(plan((small, large), spot)) == [(small, True), (large, True), (small, False), (large, False)]
    assert attempts(plan((small,), SpotPlan("SpotAsPriceGo", None, None, fallback=False))) == [(small, True)]
    assert attempts(plan((small, large), None)) == [(small, False), (large, False)]


def test_client_tokens_are_deterministic_and_fit_ecis_64_ascii_characters() -> None:
    uid = "0b0f1c6e-7d6a-4c39-9b7e-2d1f5a8c3e21"
    assert client_token(uid, "0") == client_token(uid, "0") == f"{uid}-0"
    assert client_token(uid, "0") != client_token(uid, "1")
    long = client_token("x" * 80, "0")
    assert len(long) == 64 and long.isascii() and long == client_token("x" * 80, "0")
