"""Injected faults beyond plain errors: NoStock for one shape, latency, faults that last until cleared."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.wait import eventually
from vnode.clock import ManualClock
from vnode.sandbox.eci.control import FaultInjector
from vnode.sandbox.eci.errors import EciApiError

CREATE = "CreateContainerGroup"


def shape(cpu: str | None = None, memory: str | None = None, *, instance_type: str | None = None,
          containers: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    params = {"Container.1.Name": "main", "Container.1.Image": "busybox"}
    for n, (c, m) in enumerate(containers, start=1):
        params.update({f"Container.{n}.Name": f"c{n}", f"Container.{n}.Cpu": c, f"Container.{n}.Memory": m})
    for key, value in (("Cpu", cpu), ("Memory", memory), ("InstanceType", instance_type)):
        if value is not None:
            params[key] = value
    return params


def refused(faults: FaultInjector, params: dict[str, str], action: str = CREATE) -> bool:
    try:
        faults.check(action, params)
    except EciApiError as exc:
        assert (exc.code, exc.http_status) == ("OperationDenied.NoStock", 403)
        return True
    return False


def test_no_stock_hits_its_shape_and_spares_another() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(cpu=2, memory=4)
    assert refused(faults, shape("2", "4"))
    assert not refused(faults, shape("4", "8"))


def test_no_stock_matches_the_containers_sum_when_the_group_has_no_size() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(cpu=2, memory=4)
    assert refused(faults, shape(containers=(("1", "2"), ("1", "2"))))


def test_no_stock_without_a_size_matches_the_default_two_by_four() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(cpu=2, memory=4)
    assert refused(faults, shape())


def test_instance_type_list_is_refused_only_when_every_type_is_out() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(instance_type="ecs.c6.xlarge")
    assert not refused(faults, shape(instance_type="ecs.c6.xlarge,ecs.g6.xlarge"))
    faults.inject_no_stock(instance_type="ecs.g6.xlarge")
    assert refused(faults, shape(instance_type="ecs.c6.xlarge,ecs.g6.xlarge"))


def test_instance_type_fault_spares_a_vcpu_memory_request() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(instance_type="ecs.c5.large")
    assert not refused(faults, shape("2", "4"))


def test_no_stock_applies_to_creates_only() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(cpu=2, memory=4)
    assert not refused(faults, shape("2", "4"), action="UpdateContainerGroup")


def test_counted_no_stock_runs_out() -> None:
    faults = FaultInjector()
    faults.inject_no_stock(cpu=2, memory=4, times=2)
    assert [refused(faults, shape("2", "4")) for _ in range(3)] == [True, True, False]


def test_unlimited_error_lasts_until_cleared() -> None:
    faults = FaultInjector()
    faults.inject("DescribeContainerGroups", "ServiceUnavailable", times=None)
    for _ in range(5):
        with pytest.raises(EciApiError):
            faults.check("DescribeContainerGroups")
    faults.clear()
    faults.check("DescribeContainerGroups")
    assert faults.describe() == []


@pytest.mark.parametrize("times", [0, -1, 1.5, True])
def test_times_must_be_a_positive_count(times: object) -> None:
    with pytest.raises(ValueError, match="times"):
        FaultInjector().inject_no_stock(cpu=2, times=times)  # type: ignore[arg-type]


def test_no_stock_takes_a_shape_or_a_type_not_both() -> None:
    with pytest.raises(ValueError):
        FaultInjector().inject_no_stock(cpu=2, memory=4, instance_type="ecs.c5.large")


async def started_waiting(faults: FaultInjector, count: int = 1) -> None:
    async def probe() -> bool:
        return faults.delayed == count

    await eventually(probe, timeout_seconds=5, what=f"{count} delayed call(s)")


async def test_latency_holds_the_call_until_the_clock_passes_it() -> None:
    clock, faults = ManualClock(), FaultInjector()
    faults.inject_latency("*", 2.0)
    waiting = asyncio.create_task(faults.delay("DescribeContainerGroups", clock))
    await started_waiting(faults)
    await clock.advance(1.5)
    await asyncio.sleep(0)  # let a (wrongly) finished sleep complete the task
    assert not waiting.done()
    await clock.advance(0.5)
    async with asyncio.timeout(5):
        await waiting
    assert faults.delayed == 0


async def test_counted_latency_delays_only_that_many_calls() -> None:
    clock, faults = ManualClock(), FaultInjector()
    faults.inject_latency("DescribeContainerGroups", 5.0, times=1)
    first = asyncio.create_task(faults.delay("DescribeContainerGroups", clock))
    await started_waiting(faults)
    async with asyncio.timeout(5):
        await faults.delay("DescribeContainerGroups", clock)  # none left: returns at once
    assert not first.done()
    await clock.advance(5)
    async with asyncio.timeout(5):
        await first
