"""What tests and operators steer in the emulator besides the API: throttling, injected faults, the request log.

`Throttler` keeps one token bucket per action (ECI answers `Throttling`, HTTP 400, when one is empty);
`FaultInjector` makes the next N calls of an action fail with a chosen code, wait before answering (latency), or
refuses CreateContainerGroup for one shape as out of stock; `RequestRecord` is one entry of the request log.
Nothing here talks HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from vnode.clock import Clock
from vnode.config import EciThrottleSettings
from vnode.sandbox.eci import params as p
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
    at: float = 0.0  # the emulator clock's monotonic() when the request arrived (time.monotonic, system-wide)


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


def _times(times: int | None) -> int | None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError("times must be a whole number of at least 1, or null for until cleared")
    return times


@dataclass
class _Fault:
    code: str
    remaining: int | None  # None: until cleared
    http_status: int | None
    message: str | None
    after_apply: bool = False  # the action takes effect, then its answer is this error (a lost answer)

    def view(self, action: str) -> dict[str, Any]:
        return {"kind": "error", "action": action, "code": self.code, "http_status": self.http_status,
                "message": self.message, "remaining": self.remaining, "after_apply": self.after_apply}


@dataclass
class _Latency:
    seconds: float
    remaining: int | None

    def view(self, action: str) -> dict[str, Any]:
        return {"kind": "latency", "action": action, "latency_seconds": self.seconds, "remaining": self.remaining}


@dataclass
class _NoStock:
    cpu: float | None  # None: any
    memory: float | None
    instance_type: str | None
    remaining: int | None

    def view(self) -> dict[str, Any]:
        return {"kind": "no_stock", "action": "CreateContainerGroup", "cpu": self.cpu, "memory": self.memory,
                "instance_type": self.instance_type, "remaining": self.remaining}

    def matches(self, cpu: float, memory: float, instance_types: tuple[str, ...]) -> bool:
        if instance_types:  # InstanceType sizes the group; Cpu/Memory are then ignored
            return self.instance_type is not None and self.instance_type in instance_types
        return self.instance_type is None and (self.cpu is None or abs(self.cpu - cpu) < 1e-9) and (
            self.memory is None or abs(self.memory - memory) < 1e-9)


class _Counted(Protocol):
    remaining: int | None


_C = TypeVar("_C", bound=_Counted)


def _use(queue: list[_C], item: _C) -> None:
    """Count one use of a fault, dropping it from its queue when it is used up."""
    if item.remaining is not None:
        item.remaining -= 1
        if item.remaining <= 0:
            queue.remove(item)


def requested_shape(params: Mapping[str, str]) -> tuple[float, float, tuple[str, ...]]:
    """CreateContainerGroup's size: (vCPUs, GiB, instance types). Cpu/Memory given, else the containers' sum, else
    ECI's default 2 vCPU / 4 GiB; InstanceType may list several types, comma-separated."""
    cpu = p.number(params, "Cpu") or sum(p.number(c, "Cpu") or 0.0 for c in p.indexed(params, "Container")) or 2.0
    memory = p.number(params, "Memory") or sum(
        p.number(c, "Memory") or 0.0 for c in p.indexed(params, "Container")) or 4.0
    types = tuple(t.strip() for t in (params.get("InstanceType") or "").split(",") if t.strip())
    return cpu, memory, types


class FaultInjector:
    """Faults per action (`"*"` = any action), used in order of injection; `times=None` lasts until `clear`."""

    def __init__(self) -> None:
        self._faults: dict[str, list[_Fault]] = {}
        self._latency: dict[str, list[_Latency]] = {}
        self._no_stock: list[_NoStock] = []
        self.delayed = 0  # calls waiting out an injected latency right now

    def inject(self, action: str, code: str, times: int | None = 1, *, http_status: int | None = None,
               message: str | None = None, after_apply: bool = False) -> dict[str, Any]:
        """The next `times` calls of `action` fail with `code`: before the action runs, or with `after_apply`
        once it has taken effect (the caller cannot tell whether it did, as when an answer is lost)."""
        fault = _Fault(code, _times(times), http_status, message, after_apply)
        self._faults.setdefault(action, []).append(fault)
        return fault.view(action)

    def inject_latency(self, action: str, seconds: float, times: int | None = None) -> dict[str, Any]:
        """Every call of `action` (the next `times` ones) waits `seconds` before it is answered."""
        if seconds < 0:
            raise ValueError("latency_seconds must not be negative")
        latency = _Latency(seconds, _times(times))
        self._latency.setdefault(action, []).append(latency)
        return latency.view(action)

    def inject_no_stock(self, *, cpu: float | None = None, memory: float | None = None,
                        instance_type: str | None = None, times: int | None = None) -> dict[str, Any]:
        """CreateContainerGroup of this shape answers 403 OperationDenied.NoStock (every call, or `times`)."""
        if instance_type is not None and (cpu is not None or memory is not None):
            raise ValueError("no_stock takes either cpu/memory or instance_type")
        if instance_type is None and cpu is None and memory is None:
            raise ValueError("no_stock needs cpu, memory or instance_type")
        no_stock = _NoStock(cpu, memory, instance_type, _times(times))
        self._no_stock.append(no_stock)
        return no_stock.view()

    def clear(self) -> None:
        self._faults.clear()
        self._latency.clear()
        self._no_stock.clear()

    def describe(self) -> list[dict[str, Any]]:
        """Every active fault as JSON-ready dicts (`remaining` None: until cleared)."""
        return ([f.view(action) for action, faults in self._faults.items() for f in faults]
                + [d.view(action) for action, delays in self._latency.items() for d in delays]
                + [n.view() for n in self._no_stock])

    async def delay(self, action: str, clock: Clock) -> None:
        """Wait out the latency injected for `action` (its own, else `"*"`), if any."""
        for key in (action, "*"):
            queue = self._latency.get(key)
            if queue:
                latency = queue[0]
                _use(queue, latency)
                self.delayed += 1
                try:
                    await clock.sleep(latency.seconds)
                finally:
                    self.delayed -= 1
                return

    def check(self, action: str, params: Mapping[str, str] | None = None) -> None:
        """Before the action runs: raise its next error fault, or NoStock for a create of a refused shape."""
        self._fire(action, after_apply=False)
        if action == "CreateContainerGroup" and self._no_stock and params is not None:
            self._check_stock(params)

    def check_applied(self, action: str) -> None:
        """After the action took effect: raise its next `after_apply` error fault, if that is next in line."""
        self._fire(action, after_apply=True)

    def _fire(self, action: str, *, after_apply: bool) -> None:
        for key in (action, "*"):
            queue = self._faults.get(key)
            if not queue or queue[0].after_apply != after_apply:
                continue
            fault = queue[0]
            _use(queue, fault)
            raise EciApiError(fault.code, fault.message, http_status=fault.http_status)

    def _check_stock(self, params: Mapping[str, str]) -> None:
        try:
            cpu, memory, types = requested_shape(params)
        except EciApiError:
            return  # malformed sizes: the action itself reports them
        # With several instance types ECI tries each: out of stock only when every one of them is.
        wanted = [(t,) for t in types] if types else [()]
        hits = [next((n for n in self._no_stock if n.matches(cpu, memory, t)), None) for t in wanted]
        if all(hit is not None for hit in hits):
            for hit in {id(h): h for h in hits if h is not None}.values():
                _use(self._no_stock, hit)
            raise EciApiError("OperationDenied.NoStock")
