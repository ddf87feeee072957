"""Retry backoff (full jitter, capped) and the per-action token buckets, on a manual clock."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnode.clock import ManualClock
from vnode.providers.eci.quota import DEFAULT_QUOTAS, Quota, RateLimiter, RetryPolicy, TokenBucket

POLICY = RetryPolicy(base_seconds=0.1, throttled_base_seconds=0.5, cap_seconds=20.0)


def test_delay_doubles_per_retry_at_the_top_of_the_jitter() -> None:
    assert [POLICY.delay_seconds(n, throttled=False, uniform=lambda: 1.0) for n in range(4)] == [0.1, 0.2, 0.4, 0.8]


def test_throttled_retries_start_from_the_larger_base() -> None:
    assert POLICY.delay_seconds(0, throttled=True, uniform=lambda: 1.0) == 0.5


@given(retry=st.integers(min_value=0, max_value=200), draw=st.floats(min_value=0.0, max_value=0.999999),
       throttled=st.booleans())
def test_delay_is_full_jitter_below_the_cap(retry: int, draw: float, throttled: bool) -> None:
    delay = POLICY.delay_seconds(retry, throttled=throttled, uniform=lambda: draw)
    assert 0.0 <= delay <= POLICY.ceiling_seconds(retry, throttled=throttled) <= POLICY.cap_seconds


def test_per_minute_quota_never_exceeds_its_limit_in_a_minute() -> None:
    quota = Quota.per_minute(500)
    assert quota.burst + 60 * quota.per_second <= 500


def test_create_and_delete_use_ecis_token_bucket() -> None:
    assert DEFAULT_QUOTAS["CreateContainerGroup"] == Quota(per_second=20.0, burst=100.0)


async def test_bucket_lets_the_burst_through_then_waits_for_refill() -> None:
    clock = ManualClock()
    bucket = TokenBucket(Quota(per_second=10.0, burst=2.0), clock)
    await bucket.acquire()
    await bucket.acquire()
    third = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    assert not third.done() and bucket.waits == 1 and bucket.waited_seconds == pytest.approx(0.1)
    await clock.advance(0.1)
    await asyncio.wait_for(third, timeout=5)


async def test_overridden_quota_replaces_the_default_for_that_action_only() -> None:
    limiter = RateLimiter(ManualClock(), {"DescribeContainerLog": Quota(per_second=1.0, burst=3.0)})
    assert limiter.buckets["DescribeContainerLog"].quota.burst == 3.0
    assert limiter.buckets["CreateContainerGroup"].quota == DEFAULT_QUOTAS["CreateContainerGroup"]


async def test_action_without_quota_is_not_limited() -> None:
    limiter = RateLimiter(ManualClock())
    await asyncio.wait_for(asyncio.gather(*(limiter.acquire("TagResources") for _ in range(10_000))), timeout=5)
    assert "TagResources" not in limiter.buckets
