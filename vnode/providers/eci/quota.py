"""How fast and how often vnode may call ECI: per-action token buckets and the retry backoff.

Owns ECI's documented per-account, per-region API quotas as token buckets, and the exponential backoff with full
jitter used between retries. Time comes from an injected `Clock`. It must not talk to the network or the SDK.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from vnode.clock import Clock


@dataclass(frozen=True)
class Quota:
    """A token bucket: `burst` calls at once, refilled at `per_second`."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(f"a quota needs per_second > 0 and burst >= 1, got {self}")

    @classmethod
    def per_minute(cls, limit: int) -> Quota:
        # ECI counts these per 60 s window; a bucket of 10 % burst refilled at 90 % of the rate never sends more than
        # `limit` calls in any 60 s.
        return cls(per_second=0.9 * limit / 60.0, burst=max(1.0, 0.1 * limit))


# ECI's flow-control table (eci.md §5): Create/Delete are a token bucket of 100 burst refilled 20/s; the rest are
# calls per 60 s per account and region. Actions not listed here are not limited by vnode.
DEFAULT_QUOTAS: Mapping[str, Quota] = {
    "CreateContainerGroup": Quota(per_second=20.0, burst=100.0),
    "DeleteContainerGroup": Quota(per_second=20.0, burst=100.0),
    "DescribeContainerGroupStatus": Quota.per_minute(10_000),
    "DescribeContainerGroupEvents": Quota.per_minute(10_000),
    "DescribeRegions": Quota.per_minute(10_000),
    "DescribeContainerGroups": Quota.per_minute(2_000),
    "DescribeContainerGroupMetric": Quota.per_minute(2_000),
    # The older documentation says 500 for the next three: take the lower figure.
    "DescribeMultiContainerGroupMetric": Quota.per_minute(500),
    "UpdateContainerGroup": Quota.per_minute(500),
    "RestartContainerGroup": Quota.per_minute(500),
    "DescribeContainerGroupPrice": Quota.per_minute(1_000),
    "ExecContainerCommand": Quota.per_minute(500),
    "DescribeContainerLog": Quota.per_minute(500),
    "CreateImageCache": Quota.per_minute(200),
}


class TokenBucket:
    """Callers reserve a token (the level may go negative) and sleep until it is theirs: first come, first served."""

    def __init__(self, quota: Quota, clock: Clock) -> None:
        self.quota = quota
        self._clock = clock
        self._tokens = quota.burst
        self._at = clock.monotonic()
        self.acquired = 0
        self.waits = 0  # acquisitions that had to sleep
        self.waited_seconds = 0.0  # their summed sleep

    async def acquire(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.quota.burst, self._tokens + (now - self._at) * self.quota.per_second)
        self._at = now
        self._tokens -= 1.0
        self.acquired += 1
        if self._tokens >= 0.0:
            return
        delay = -self._tokens / self.quota.per_second
        self.waits += 1
        self.waited_seconds += delay
        await self._clock.sleep(delay)


class RateLimiter:
    """One bucket per action, built from the defaults overlaid with `quotas`."""

    def __init__(self, clock: Clock, quotas: Mapping[str, Quota] | None = None) -> None:
        merged = {**DEFAULT_QUOTAS, **(quotas or {})}
        self.buckets = {action: TokenBucket(quota, clock) for action, quota in merged.items()}

    async def acquire(self, action: str) -> None:
        bucket = self.buckets.get(action)
        if bucket is not None:
            await bucket.acquire()


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per logical call and the backoff between them (the SDK's own constants: 100 ms base, 500 ms when
    throttled, 20 s cap)."""

    max_attempts: int = 5
    base_seconds: float = 0.1
    throttled_base_seconds: float = 0.5
    cap_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_seconds < 0 or self.throttled_base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError(f"invalid retry policy {self}")

    def delay_seconds(self, retry: int, *, throttled: bool, uniform: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [0, min(cap, base·2^retry)) for the `retry`-th retry (0 = first)."""
        base = self.throttled_base_seconds if throttled else self.base_seconds
        return uniform() * min(self.cap_seconds, base * 2.0 ** retry)

    def ceiling_seconds(self, retry: int, *, throttled: bool) -> float:
        """The largest delay `delay_seconds` can give: what to suggest as retry-after once retries run out."""
        base = self.throttled_base_seconds if throttled else self.base_seconds
        return min(self.cap_seconds, base * 2.0 ** retry)
