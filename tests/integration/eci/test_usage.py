"""`usage_snapshot`: the provider's usage figures from the emulator's metrics, through EciClient and the real SDK."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from vnode.clock import ManualClock
from vnode.providers.base import PodRef
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.usage import usage_snapshot
from vnode.sandbox.eci.server import EciEmulator

GIB = 1024**3


async def create(client: EciClient, name: str, *, memory: float = 2.0) -> str:
    return await client.create_container_group({
        "ContainerGroupName": name, "RestartPolicy": "Never",
        "Container": [{"Name": "main", "Image": "busybox", "Cpu": 1.0, "Memory": memory}]})


def ref(name: str) -> PodRef:
    return PodRef("ci", name, f"uid-{name}")


async def test_running_groups_numbers_reach_the_pods(client: EciClient, clock: ManualClock) -> None:
    running = await create(client, "build-1", memory=4.0)
    await clock.advance(3 + 60)
    pending = await create(client, "build-2")
    started = clock.now() - timedelta(seconds=60)
    snapshot = await usage_snapshot(client, {running: ref("build-1"), pending: ref("build-2")}, clock,
                                    start_times={running: started})
    assert snapshot.time == clock.now()
    [pod] = snapshot.pods  # build-2 is still Scheduling: no records yet
    [container] = pod.containers
    assert (pod.ref, pod.start_time, container.name, container.start_time) == (
        ref("build-1"), started, "main", started)
    assert container.memory_working_set_bytes == 2 * GIB and container.memory_limit_bytes == 4 * GIB
    assert container.cpu_usage_nano_cores == 250_000_000
    # A quarter of a vCPU for the whole seconds it ran up to the record's 15 s grid point.
    assert 0 < container.cpu_usage_core_nanoseconds <= 0.25 * 60 * 1e9
    assert pod.network_rx_bytes and pod.network_tx_bytes


async def test_cpu_time_grows_between_snapshots(client: EciClient, clock: ManualClock) -> None:
    group_id = await create(client, "build-1")
    await clock.advance(3 + 60)
    first = await usage_snapshot(client, {group_id: ref("build-1")}, clock)
    await clock.advance(60)
    second = await usage_snapshot(client, {group_id: ref("build-1")}, clock)
    [before], [after] = first.pods[0].containers, second.pods[0].containers
    grown = after.cpu_usage_core_nanoseconds - before.cpu_usage_core_nanoseconds
    assert grown == pytest.approx(0.25 * 60 * 1e9, abs=2)


async def test_more_than_twenty_groups_are_asked_in_chunks(
        client: EciClient, clock: ManualClock, emulator: EciEmulator) -> None:
    groups = {await create(client, f"build-{n}"): ref(f"build-{n}") for n in range(25)}
    await clock.advance(3 + 30)
    snapshot = await usage_snapshot(client, groups, clock)
    assert {pod.ref for pod in snapshot.pods} == set(groups.values())
    asked = [json.loads(c.params["ContainerGroupIds"]) for c in emulator.calls("DescribeMultiContainerGroupMetric")]
    assert sorted(len(ids) for ids in asked) == [5, 20]


async def test_groups_the_answer_leaves_out_are_skipped(client: EciClient, clock: ManualClock) -> None:
    group_id = await create(client, "build-1")
    await clock.advance(3 + 30)
    snapshot = await usage_snapshot(client, {group_id: ref("build-1"), "eci-gone": ref("gone")}, clock)
    assert [pod.ref for pod in snapshot.pods] == [ref("build-1")]
