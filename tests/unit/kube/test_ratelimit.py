"""The client-side token bucket and backoff, driven by a manual clock."""

from __future__ import annotations

import asyncio
import random

import pytest

from vnode.clock import ManualClock
from vnode.kube.ratelimit import Backoff, TokenBucket


def test_burst_is_free_then_each_token_costs_one_over_qps() -> None:
    """The first `burst` reservations wait nothing; the next ones queue 1/qps apart."""
    bucket = TokenBucket(20, 5, clock=ManualClock())
    waits = [bucket.reserve() for _ in range(25)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([n / 20 for n in range(1, 21)])


async def test_tokens_refill_with_time_up_to_the_burst() -> None:
    """Idle time refills the bucket at qps, never beyond burst."""
    clock = ManualClock()
    bucket = TokenBucket(10, 3, clock=clock)
    for _ in range(3):
        bucket.reserve()
    await clock.advance(0.2)
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])
    await clock.advance(100)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_non_positive_qps_is_unlimited() -> None:
    """qps <= 0 never makes anyone wait."""
    bucket = TokenBucket(0, 1, clock=ManualClock())
    assert all(bucket.reserve() == 0.0 for _ in range(1000))


async def test_acquire_sleeps_on_the_clock_and_counts_the_wait() -> None:
    """A request past the burst sleeps until its token matures; the wait is added to the throttling counters."""
    clock = ManualClock()
    bucket = TokenBucket(2, 1, clock=clock)
    assert await bucket.acquire() == 0.0
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    await clock.advance(0.5)
    assert await waiter == pytest.approx(0.5)
    assert bucket.waited_seconds_total == pytest.approx(0.5)
    assert bucket.throttled_total == 1


async def test_a_cancelled_waiter_gives_its_token_back() -> None:
    """Cancelling a queued request refunds its reservation, so the next caller does not wait for it."""
    clock = ManualClock()
    bucket = TokenBucket(1, 1, clock=clock)
    bucket.reserve()
    waiter = asyncio.create_task(bucket.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket.reserve() == pytest.approx(1.0)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    """Delays grow exponentially, stay within the cap, and start over after reset."""
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_stretches_by_at_most_the_fraction() -> None:
    """Jitter adds up to `jitter` x the delay, never past the cap."""
    backoff = Backoff(1.0, 3.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(5)]
    assert 1.0 <= delays[0] <= 1.5
    assert 2.0 <= delays[1] <= 3.0
    assert all(d <= 3.0 for d in delays)
