"""Liveness, readiness and startup probes of one container instance, scheduled as the kubelet's prober workers do.

Owns the probe fields' defaults and validation, the per-probe loop (initialDelaySeconds, periodSeconds, a timeout
per attempt, success and failure thresholds), the startup gate, and what the results mean: `ready`, `started`, the
`Unhealthy` Events, and a request to kill the container when liveness or startup fails. How one attempt is made
(exec, HTTP, TCP) is a `Check` given by the runner (`checks.py`); this module makes no engine or network calls, and
never kills anything itself: its owner (`PodRunner`) runs `ContainerProbes.run` as a task and cancels it with the
container. `probe_label` and `probes_from_label` keep what the probes need on the container as a label, so a pod
adopted after a restart of vnode is probed as its spec says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from vnode.clock import Clock
from vnode.errors import InvalidPod

ProbeKind = Literal["liveness", "readiness", "startup"]
Outcome = Literal["success", "failure", "error"]
_FIELDS: tuple[tuple[ProbeKind, str], ...] = (
    ("startup", "startupProbe"), ("liveness", "livenessProbe"), ("readiness", "readinessProbe"))
_HANDLERS = ("exec", "httpGet", "tcpSocket")


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a container, with the API's defaults applied."""

    kind: ProbeKind
    handler: str  # exec, httpGet or tcpSocket
    action: Mapping[str, Any]  # the handler's fields as written
    initial_delay_seconds: float = 0.0
    period_seconds: float = 10.0
    timeout_seconds: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @property
    def title(self) -> str:
        return self.kind.capitalize()  # the kubelet's "Liveness probe failed: ..."


@dataclass(frozen=True)
class ProbeResult:
    outcome: Outcome
    output: str = ""  # what the kubelet puts after "probe failed: " (stdout+stderr, an HTTP status, an error)


Check = Callable[[ProbeSpec], Awaitable[ProbeResult]]
EventSink = Callable[[Literal["Normal", "Warning"], str, str], None]


def probe_specs(container: Mapping[str, Any], where: str) -> tuple[ProbeSpec, ...]:
    """The container's probes (startup first), refusing with InvalidPod what the API server's validation would."""
    specs: list[ProbeSpec] = []
    for kind, key in _FIELDS:
        probe: Mapping[str, Any] | None = container.get(key)
        if not probe:
            continue
        field = f"{where}.{key}"
        handlers = [name for name in (*_HANDLERS, "grpc") if probe.get(name) is not None]
        if len(handlers) != 1:
            raise InvalidPod("a probe needs exactly one of exec, httpGet, tcpSocket", field=field)
        if handlers[0] == "grpc":
            raise InvalidPod("grpc probes are not supported by the Docker provider", field=f"{field}.grpc")
        spec = ProbeSpec(
            kind, handlers[0], probe[handlers[0]],
            initial_delay_seconds=_number(probe, "initialDelaySeconds", 0, 0, field),
            period_seconds=_number(probe, "periodSeconds", 10, 1, field),
            timeout_seconds=_number(probe, "timeoutSeconds", 1, 1, field),
            success_threshold=int(_number(probe, "successThreshold", 1, 1, field)),
            failure_threshold=int(_number(probe, "failureThreshold", 3, 1, field)))
        if kind != "readiness" and spec.success_threshold != 1:
            raise InvalidPod("must be 1 for liveness and startup probes", field=f"{field}.successThreshold")
        if spec.handler == "exec" and not (spec.action.get("command") or []):
            raise InvalidPod("an exec probe needs a command", field=f"{field}.exec.command")
        if spec.handler in ("httpGet", "tcpSocket") and spec.action.get("port") in (None, ""):
            raise InvalidPod("a probe needs a port", field=f"{field}.{spec.handler}.port")
        specs.append(spec)
    return tuple(specs)


def initial_verdict(specs: tuple[ProbeSpec, ...]) -> tuple[bool, bool]:
    """(ready, started) of an instance before any probe answered: a startup probe holds both, a readiness probe
    holds ready (the kubelet reports a container with probes that have not run yet as not ready)."""
    kinds = {spec.kind for spec in specs}
    started = "startup" not in kinds
    return "readiness" not in kinds and started, started


def named_ports(container: Mapping[str, Any]) -> dict[str, int]:
    """The container's named ports, which httpGet and tcpSocket probes may name instead of a number."""
    return {str(p["name"]): int(p["containerPort"]) for p in container.get("ports") or []
            if p.get("name") and p.get("containerPort")}


def probe_label(container: Mapping[str, Any]) -> str | None:
    """Compact JSON of the container's probes and named ports (None without probes): what an adopted container's
    probes are rebuilt from (`probes_from_label`)."""
    carried: dict[str, Any] = {key: container[key] for _, key in _FIELDS if container.get(key)}
    if not carried:
        return None
    ports = named_ports(container)
    if ports:
        carried["ports"] = [{"name": name, "containerPort": port} for name, port in ports.items()]
    return json.dumps(carried, separators=(",", ":"), sort_keys=True)


def probes_from_label(text: str, where: str) -> dict[str, Any]:
    """The container fields `probe_label` kept, checked by `probe_specs` (`where` names them in its errors).
    ValueError or InvalidPod for a label `probe_label` could not have written."""
    carried = json.loads(text)
    keys = {key for _, key in _FIELDS}
    if not isinstance(carried, dict) or not set(carried) <= {*keys, "ports"}:
        raise ValueError("the probes label is not an object of probes and ports")
    if not all(isinstance(value, dict) for key, value in carried.items() if key in keys):
        raise ValueError("the probes label has a probe that is not an object")
    ports = carried.get("ports", [])
    if not isinstance(ports, list) or not all(
            isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("containerPort"), int)
            for p in ports):
        raise ValueError("the probes label has malformed ports")
    probe_specs(carried, where)
    return carried


def _number(probe: Mapping[str, Any], key: str, default: int, least: int, field: str) -> float:
    value = probe.get(key)
    if value is None or (value == 0 and default):
        return float(default)  # the API server defaults an unset or zero period, timeout or threshold
    if not isinstance(value, int | float) or value < least:
        raise InvalidPod(f"must be a number of at least {least}", field=f"{field}.{key}")
    return float(value)


class ContainerProbes:
    """The probe workers of one container instance. `ready` and `started` are what its status reports; `changed`
    is called when either flips, `kill` once when liveness or startup fails past its threshold (then every worker
    stops: the kubelet holds an instance's probes until it is replaced). `running_for`: how long the instance
    has run already (an adopted one), which counts towards initialDelaySeconds."""

    def __init__(self, container: str, specs: tuple[ProbeSpec, ...], check: Check, *, clock: Clock,
                 event: EventSink, changed: Callable[[], None], kill: Callable[[str], None],
                 running_for: float = 0.0) -> None:
        self._container, self._specs, self._check, self._clock = container, specs, check, clock
        self._event, self._changed, self._kill = event, changed, kill
        self.ready, self.started = initial_verdict(specs)
        self._started = asyncio.Event()
        if self.started:
            self._started.set()
        self._held = asyncio.Event()
        # initialDelaySeconds counts from the instance's start (the kubelet compares with its StartedAt).
        self._born = clock.monotonic() - max(0.0, running_for)

    async def run(self) -> None:
        """Every probe's loop, until the container is killed or this task is cancelled."""
        async with asyncio.TaskGroup() as group:
            workers = [group.create_task(self._worker(spec), name=f"{spec.kind} probe {self._container}")
                       for spec in self._specs]
            await self._held.wait()
            for worker in workers:
                worker.cancel()

    async def _worker(self, spec: ProbeSpec) -> None:
        await self._sleep_until(self._born + spec.initial_delay_seconds)
        last: Outcome | None = None
        run = 0
        while True:
            began = self._clock.monotonic()
            if spec.kind == "startup" and self.started:
                return  # a startup probe ends with its first success
            if spec.kind == "startup" or self.started:
                result = await self._attempt(spec)
                if result.outcome == "error":
                    # The kubelet throws an errored probe's result away: it counts towards no threshold.
                    self._event("Warning", "Unhealthy", f"{spec.title} probe errored: {result.output}")
                else:
                    if result.outcome == "failure":
                        self._event("Warning", "Unhealthy", f"{spec.title} probe failed: {result.output}")
                    run = run + 1 if result.outcome == last else 1
                    last = result.outcome
                    threshold = spec.success_threshold if last == "success" else spec.failure_threshold
                    if run >= threshold:
                        self._apply(spec, last == "success")
                        if self._held.is_set():
                            return
            await self._sleep_until(began + spec.period_seconds)

    async def _attempt(self, spec: ProbeSpec) -> ProbeResult:
        """One check, a failure once timeoutSeconds pass (the kubelet counts a timed-out probe as failed)."""
        check = asyncio.ensure_future(self._check(spec))
        timer = asyncio.ensure_future(self._sleep_until(self._clock.monotonic() + spec.timeout_seconds))
        try:
            await asyncio.wait({check, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (check, timer):
                future.cancel()
            await asyncio.gather(check, timer, return_exceptions=True)
        if check.done() and not check.cancelled() and check.exception() is None:
            return check.result()
        if check.done() and not check.cancelled() and (error := check.exception()) is not None:
            return ProbeResult("error", str(error))
        return ProbeResult("failure", timeout_output(spec))

    async def _sleep_until(self, deadline: float) -> None:
        """Deadlines are absolute, so time that passes before a sleep begins still counts."""
        await self._clock.sleep(max(0.0, deadline - self._clock.monotonic()))

    def _apply(self, spec: ProbeSpec, success: bool) -> None:
        if spec.kind == "readiness":
            if self.ready != success:
                self.ready = success
                self._changed()
        elif spec.kind == "startup" and success:
            self.started = True
            self._started.set()
            self.ready = "readiness" not in {s.kind for s in self._specs}
            self._changed()
        elif not success:
            self._held.set()
            self._kill(f"Container {self._container} failed {spec.kind} probe, will be restarted")


def timeout_output(spec: ProbeSpec) -> str:
    """The kubelet's words for an attempt that outlived timeoutSeconds."""
    if spec.handler == "exec":
        return f'command "{" ".join(str(part) for part in spec.action.get("command") or [])}" timed out'
    if spec.handler == "httpGet":
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    return "i/o timeout"
