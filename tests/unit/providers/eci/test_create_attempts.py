"""The order of a create's attempts, their ClientTokens, and the SinceSecond window of a status poll."""

from __future__ import annotations

from vnode.providers.eci.poller import window_seconds
from vnode.providers.eci.provider import attempts, client_token
from vnode.providers.eci.translate import CreatePlan, GroupShape, SpotPlan


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
