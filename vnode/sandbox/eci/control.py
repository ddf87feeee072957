"""What tests and operators steer in the emulator besides the API: throttling, injected faults, the request log.

`Throttler` keeps one token bucket per action (ECI answers `Throttling`, HTTP 400, when one is empty);
`FaultInjector` makes the next N calls of an action fail with a chosen code; `RequestRecord` is one entry of the
request log. Nothing here talks HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vnode.clock import Clock
from vnode.config import EciThrottleSettings
from vnode.sandbox.eci.errors import EciApiError

# Parameters that carry credentials or registry passwords: never kept in the log.
_SECRET_PARAMS = ("Signature", "Password", "SecurityToken")


@dataclass(frozen=True)
class RequestRecord:
    action: str
    method: str
    params: dict[str, str]
    http_status: int = 200
    code: str = ""  # the error code, empty on success


def loggable(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if not k.endswith(_SECRET_PARAMS)}


class _Bucket:
    def __init__(self, rule: EciThrottleSettings, now: float) -> None:
        self.rule = rule
        self.tokens = float(rule.burst)
        self.at = now

    def take(self, now: float) -> bool:
        self.tokens = min(float(self.rule.burst), self.tokens + (now - self.at) * self.rule.per_second)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Throttler:
    def __init__(self, rules: Mapping[str, EciThrottleSettings], clock: Clock) -> None:
        self._clock = clock
        self._buckets = {action: _Bucket(rule, clock.monotonic()) for action, rule in rules.items()}

    def check(self, action: str) -> None:
        bucket = self._buckets.get(action)
        if bucket is not None and not bucket.take(self._clock.monotonic()):
            raise EciApiError("Throttling", "Request was denied due to request throttling.")


@dataclass
class _Fault:
    code: str
    remaining: int
    http_status: int | None
    message: str | None


class FaultInjector:
    """Faults per action (`"*"` = any action), used in order of injection."""

    def __init__(self) -> None:
        self._faults: dict[str, list[_Fault]] = {}

    def inject(self, action: str, code: str, times: int = 1, *, http_status: int | None = None,
               message: str | None = None) -> None:
        self._faults.setdefault(action, []).append(_Fault(code, times, http_status, message))

    def clear(self) -> None:
        self._faults.clear()

    def check(self, action: str) -> None:
        for key in (action, "*"):
            queue = self._faults.get(key)
            if not queue:
                continue
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
            raise EciApiError(fault.code, fault.message, http_status=fault.http_status)
