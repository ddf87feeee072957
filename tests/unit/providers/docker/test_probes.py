"""probes.py: the kubelet's probe scheduling and thresholds, on a ManualClock with scripted checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.wait import eventually
from vnode.clock import ManualClock
from vnode.errors import InvalidPod
from vnode.providers.docker.probes import (
    ContainerProbes,
    Outcome,
    ProbeResult,
    ProbeSpec,
    probe_label,
    probe_specs,
    probes_from_label,
)


@dataclass
class Harness:
    clock: ManualClock
    script: dict[str, list[Outcome | None]]  # per probe kind; None: the check never answers
    calls: list[tuple[str, float]] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    changes: int = 0
    probes: ContainerProbes | None = None

    async def check(self, spec: ProbeSpec) -> ProbeResult:
        self.calls.append((spec.kind, self.clock.monotonic()))
        steps = self.script[spec.kind]
        outcome = steps.pop(0) if len(steps) > 1 else steps[0]
        if outcome is None:
            await asyncio.Event().wait()
        assert outcome is not None
        return ProbeResult(outcome, "" if outcome == "success" else "boom")

    def changed(self) -> None:
        self.changes += 1

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        async def holds() -> bool:
            return condition()
        await eventually(holds, timeout_seconds=5.0, what=what)


def _container(**probes: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "main", "image": "i", **probes}


@pytest.fixture
async def harness_factory() -> AsyncIterator[Callable[..., Harness]]:
    tasks: list[asyncio.Task[None]] = []

    def make(container: dict[str, Any], script: dict[str, list[Outcome | None]], *,
             running_for: float = 0.0) -> Harness:
        harness = Harness(ManualClock(), script)
        harness.probes = ContainerProbes(
            "main", probe_specs(container, "spec.containers[0]"), harness.check, clock=harness.clock,
            event=lambda kind, reason, message: harness.events.append((kind, reason, message)),
            changed=harness.changed, kill=harness.kills.append, running_for=running_for)
        tasks.append(asyncio.create_task(harness.probes.run(), name="probes under test"))
        return harness

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_probe_fields_get_the_api_defaults() -> None:
    (spec,) = probe_specs(_container(livenessProbe={"tcpSocket": {"port": 80}}), "spec.containers[0]")
    assert (spec.initial_delay_seconds, spec.period_seconds, spec.timeout_seconds, spec.success_threshold,
            spec.failure_threshold) == (0, 10, 1, 1, 3)


def test_a_probe_without_a_handler_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        probe_specs(_container(readinessProbe={"periodSeconds": 5}), "spec.containers[0]")
    assert caught.value.field == "spec.containers[0].readinessProbe"


async def test_readiness_waits_for_the_initial_delay_then_probes_every_period(harness_factory: Any) -> None:
    h = harness_factory(_container(readinessProbe={"exec": {"command": ["true"]}, "initialDelaySeconds": 5,
                                                   "periodSeconds": 2}), {"readiness": ["success"]})
    await h.clock.advance(4.9)
    await h.clock.advance(0.1)
    await h.until(lambda: h.count("readiness") == 1, "the first probe at 5 s")
    await h.clock.advance(2)
    await h.until(lambda: h.count("readiness") == 2, "the second probe at 7 s")
    assert [at for _, at in h.calls] == [5.0, 7.0]


async def test_time_an_adopted_instance_has_run_counts_towards_the_initial_delay(harness_factory: Any) -> None:
    h = harness_factory(_container(readinessProbe={"exec": {"command": ["true"]}, "initialDelaySeconds": 5}),
                        {"readiness": ["success"]}, running_for=4.0)
    assert h.probes.ready is False  # not ready before the first probe answers
    await h.clock.advance(1)
    await h.until(lambda: h.probes.ready, "ready after the first probe")
    assert [at for _, at in h.calls] == [1.0]


def test_a_probes_label_reads_back_as_the_probes_it_was_written_from() -> None:
    container = {**_container(startupProbe={"tcpSocket": {"port": "web"}, "failureThreshold": 30}),
                 "ports": [{"name": "web", "containerPort": 80}]}
    label = probe_label(container)
    assert label is not None
    assert probe_specs(probes_from_label(label, "label"), "label") == probe_specs(container, "spec.containers[0]")


@pytest.mark.parametrize("label", [
    "not json", "[]", '{"env": []}', '{"readinessProbe": []}', '{"readinessProbe": {"periodSeconds": 1}}',
    '{"livenessProbe": {"exec": {"command": ["x"]}}, "ports": [{"name": "web", "containerPort": "80"}]}'])
def test_a_probes_label_vnode_could_not_have_written_is_refused(label: str) -> None:
    with pytest.raises((ValueError, InvalidPod)):
        probes_from_label(label, "label")


async def test_readiness_needs_success_threshold_successes_and_failure_threshold_failures(
        harness_factory: Any) -> None:
    h = harness_factory(_container(readinessProbe={"exec": {"command": ["x"]}, "periodSeconds": 1,
                                                   "successThreshold": 2, "failureThreshold": 2}),
                        {"readiness": ["success", "success", "failure", "failure"]})
    assert h.probes.ready is False
    await h.until(lambda: h.count("readiness") == 1, "the first probe")
    assert h.probes.ready is False  # one success of two
    await h.clock.advance(1)
    await h.until(lambda: h.probes.ready, "ready after two successes")
    await h.clock.advance(1)
    await h.until(lambda: h.count("readiness") == 3, "the first failure")
    assert h.probes.ready is True  # one failure of two
    await h.clock.advance(1)
    await h.until(lambda: not h.probes.ready, "not ready after two failures")
    assert ("Warning", "Unhealthy", "Readiness probe failed: boom") in h.events and h.kills == []


async def test_liveness_failing_past_its_threshold_asks_for_one_kill_and_stops_probing(harness_factory: Any) -> None:
    h = harness_factory(_container(livenessProbe={"exec": {"command": ["x"]}, "periodSeconds": 1}),
                        {"liveness": ["failure"]})
    for calls in (1, 2):
        await h.until(lambda calls=calls: h.count("liveness") == calls, f"probe {calls}")
        await h.clock.advance(1)
    await h.until(lambda: h.kills != [], "a kill after three failures")
    await h.clock.advance(5)
    assert h.kills == ["Container main failed liveness probe, will be restarted"]
    assert h.count("liveness") == 3
    assert h.events.count(("Warning", "Unhealthy", "Liveness probe failed: boom")) == 3


async def test_startup_gates_liveness_and_readiness_until_it_succeeds(harness_factory: Any) -> None:
    h = harness_factory(_container(
        startupProbe={"exec": {"command": ["x"]}, "periodSeconds": 1, "failureThreshold": 10},
        livenessProbe={"exec": {"command": ["x"]}, "periodSeconds": 1},
        readinessProbe={"exec": {"command": ["x"]}, "periodSeconds": 1}),
        {"startup": ["failure", "success"], "liveness": ["success"], "readiness": ["success"]})
    await h.until(lambda: h.count("startup") == 1, "the first startup probe")
    assert (h.probes.started, h.count("liveness"), h.count("readiness")) == (False, 0, 0)
    await h.clock.advance(1)
    await h.until(lambda: h.probes.started, "started after the startup probe's success")
    await h.clock.advance(1)
    await h.until(lambda: h.probes.ready, "ready once readiness runs")
    await h.clock.advance(1)
    await h.until(lambda: h.count("liveness") >= 1, "liveness probing")
    assert h.count("startup") == 2  # a startup probe stops after its first success


async def test_a_check_outliving_its_timeout_counts_as_a_failure(harness_factory: Any) -> None:
    h = harness_factory(_container(readinessProbe={"exec": {"command": ["sleep", "9"]}, "timeoutSeconds": 3,
                                                   "failureThreshold": 1}), {"readiness": [None]})
    await h.until(lambda: h.count("readiness") == 1, "the probe to start")
    await h.clock.advance(3)
    await h.until(lambda: h.events != [], "the timeout")
    assert h.events == [("Warning", "Unhealthy", 'Readiness probe failed: command "sleep 9" timed out')]
    assert h.probes.ready is False


async def test_an_errored_check_is_reported_and_counts_towards_no_threshold(harness_factory: Any) -> None:
    h = harness_factory(_container(livenessProbe={"exec": {"command": ["x"]}, "failureThreshold": 1}),
                        {"liveness": ["error"]})
    await h.until(lambda: h.events != [], "the error event")
    assert h.events == [("Warning", "Unhealthy", "Liveness probe errored: boom")] and h.kills == []
