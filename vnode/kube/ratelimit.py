"""Pacing for API traffic: client-go's token bucket (QPS refilling up to a burst) and capped exponential backoff.

Owns the arithmetic and the waiting, through an injected clock so tests drive time by hand. It must not know about
HTTP or Kubernetes objects: the client takes a token per request, retry loops ask `Backoff` how long to wait.
"""

from __future__ import annotations

import random

from vnode.clock import Clock


class TokenBucket:
    """`qps` tokens per second, at most `burst` banked; `qps <= 0` means unlimited (client-go's fake-always limiter).

    Like golang.org/x/time/rate, a caller reserves its token at once (the balance may go negative) and then sleeps
    until the reservation matures, so waiters are served in arrival order without a lock.
    """

    def __init__(self, qps: float, burst: int, *, clock: Clock) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._last = clock.monotonic()
        # Read by metrics as "API client throttling": total seconds requests spent waiting, and how many waited.
        self.waited_seconds_total = 0.0
        self.throttled_total = 0

    @property
    def unlimited(self) -> bool:
        return self.qps <= 0

    def reserve(self) -> float:
        """Take one token now; return how many seconds the caller must wait before using it."""
        if self.unlimited:
            return 0.0
        now = self._clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def _refund(self) -> None:
        self._tokens = min(float(self.burst), self._tokens + 1.0)

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds actually waited (also added to `waited_seconds_total`)."""
        delay = self.reserve()
        if delay <= 0:
            return 0.0
        self.throttled_total += 1
        started = self._clock.monotonic()
        try:
            await self._clock.sleep(delay)
        except BaseException:
            # A cancelled request never used its token: give it back to whoever comes next.
            self._refund()
            raise
        finally:
            waited = self._clock.monotonic() - started
            self.waited_seconds_total += waited
        return waited


class Backoff:
    """Capped exponential backoff with jitter: `initial * factor**n`, at most `max_seconds`, stretched by up to
    `jitter` (a fraction) so that many clients retrying the same outage do not arrive in lockstep."""

    def __init__(self, initial_seconds: float = 0.5, max_seconds: float = 30.0, *, factor: float = 2.0,
                 jitter: float = 0.2, rng: random.Random | None = None) -> None:
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Failures since the last reset."""
        return self._attempt

    def next_delay(self) -> float:
        base = min(self.max_seconds, self.initial_seconds * self.factor ** min(self._attempt, 60))
        self._attempt += 1
        return min(self.max_seconds, base * (1.0 + self.jitter * self._rng.random()))

    def reset(self) -> None:
        self._attempt = 0
