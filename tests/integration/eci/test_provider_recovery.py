"""EciProvider when things go wrong: restarts (adoption by tag, orphan sweep), stock shortage across shapes, server
errors during create, an unreachable ECI, and a polling cost that does not grow with the number of pods."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.eci.provider_world import EciProviderWorld, eci_provider_world, pod
from tests.support.running import stopped
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.errors import BackendUnavailable, InvalidPod, Retryable
from vnode.providers.eci.annotations import FAIL_ON_CREATE_ERROR, USE_SPECS
from vnode.providers.eci.provider import SHAPE_REASON

STATUS_POLL_SECONDS = 0.137  # only the status loop sleeps this long: the gated clock holds it


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EciProviderWorld]:
    async with eci_provider_world(tmp_path, monkeypatch) as running:
        yield running


def full_status_lists(world: EciProviderWorld) -> int:
    """DescribeContainerGroupStatus calls without a SinceSecond window: where the sweep finds its candidates."""
    return sum(1 for c in world.emulator.calls("DescribeContainerGroupStatus") if "SinceSecond" not in c.params)


async def test_a_restarted_provider_adopts_the_nodes_groups_by_tag(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    await world.until(build.ref, lambda u: u.phase == "Running", "Running")
    await stopped(world.task)
    again = world.restarted()
    try:
        listed = await again.provider.list_pods()
        assert [(u.ref, u.phase) for u in listed] == [(build.ref, "Running")]
        await again.provider.create_pod(build)  # the controller re-syncs the pod: no second group
        lists = full_status_lists(world)

        async def full_list_seen() -> bool:
            return full_status_lists(world) > lists
        await eventually(full_list_seen, timeout_seconds=10, what="a full status list by the new provider")
        assert await again.provider.sweep_orphans() == []  # the adopted group is no stranger
        assert len(world.groups(build.ref.uid)) == 1
        assert len(world.emulator.calls("CreateContainerGroup")) == 1
        assert not world.emulator.calls("DeleteContainerGroup")
    finally:
        await stopped(again.task)


async def test_the_sweep_looks_up_strangers_by_id_not_the_whole_node(world: EciProviderWorld) -> None:
    builds = [pod(f"build-{n}") for n in range(25)]
    for build in builds:
        await world.provider.create_pod(build)
    lists = full_status_lists(world)

    async def full_list_seen() -> bool:
        return full_status_lists(world) > lists
    await eventually(full_list_seen, timeout_seconds=10, what="a full status list")
    before = len(world.emulator.calls("DescribeContainerGroups"))
    assert await world.provider.sweep_orphans() == []
    assert len(world.emulator.calls("DescribeContainerGroups")) == before  # no stranger, no call


async def test_the_sweep_deletes_a_group_no_pod_of_this_provider_owns(world: EciProviderWorld) -> None:
    newer = world.restarted()  # a second vnode for the node: it never sees the first one's pod
    try:
        await newer.provider.list_pods()
        stray = pod("stray-1")
        await world.provider.create_pod(stray)
        [group] = world.groups(stray.ref.uid)

        async def gone() -> bool:
            return not world.groups(stray.ref.uid)
        await eventually(gone, timeout_seconds=10, what="the orphan's deletion")
        deletes = [c.params["ContainerGroupId"] for c in world.emulator.calls("DeleteContainerGroup")]
        assert deletes == [group.id]
    finally:
        await stopped(newer.task)


async def test_no_stock_for_the_first_shape_creates_the_second_with_a_warning(world: EciProviderWorld) -> None:
    world.emulator.faults.inject_no_stock(cpu=2, memory=4)
    build = pod("build-1", annotations={USE_SPECS: "2-4Gi,4-8Gi"})
    await world.provider.create_pod(build)
    [group] = world.groups(build.ref.uid)
    assert (group.cpu, group.memory) == (4.0, 8.0)
    creates = world.emulator.calls("CreateContainerGroup")
    assert [c.code for c in creates] == ["OperationDenied.NoStock", ""]
    assert [c.params["ClientToken"] for c in creates] == [f"{build.ref.uid}-0", f"{build.ref.uid}-1"]
    [warning] = [e for e in world.events(build.ref) if e[0] == "Warning"]
    assert warning[1] == SHAPE_REASON and "2-4Gi" in warning[2] and "OperationDenied.NoStock" in warning[2]
    assert any(u.reason == SHAPE_REASON and u.phase == "Pending" for u in world.updates)


async def test_no_stock_for_every_shape_leaves_the_create_to_be_retried(world: EciProviderWorld) -> None:
    world.emulator.faults.inject_no_stock(cpu=2, memory=4)
    world.emulator.faults.inject_no_stock(cpu=4, memory=8)
    build = pod("build-1", annotations={USE_SPECS: "2-4Gi,4-8Gi"})
    with pytest.raises(Retryable, match="ECI refused every shape"):
        await world.provider.create_pod(build)
    assert world.groups(build.ref.uid) == []


async def test_no_stock_for_every_shape_fails_the_pod_under_fail_on_create_error(world: EciProviderWorld) -> None:
    world.emulator.faults.inject_no_stock(cpu=2, memory=4)
    build = pod("build-1", annotations={USE_SPECS: "2-4Gi", FAIL_ON_CREATE_ERROR: "true"})
    with pytest.raises(InvalidPod, match="ContainerInstanceScheduleFailed"):
        await world.provider.create_pod(build)


async def test_server_errors_during_create_still_make_one_group(world: EciProviderWorld) -> None:
    world.emulator.inject("CreateContainerGroup", "InternalError", times=2)
    build = pod("build-1")
    await world.provider.create_pod(build)
    assert len(world.groups(build.ref.uid)) == 1
    creates = world.emulator.calls("CreateContainerGroup")
    assert [c.code for c in creates] == ["InternalError", "InternalError", ""]
    assert {c.params["ClientToken"] for c in creates} == {f"{build.ref.uid}-0"}


async def test_throttling_beyond_the_clients_retries_is_waited_out(world: EciProviderWorld) -> None:
    world.emulator.inject("CreateContainerGroup", "Throttling", times=4)  # max_attempts is 3
    build = pod("build-1")
    await world.provider.create_pod(build)
    assert [c.code for c in world.emulator.calls("CreateContainerGroup")] == ["Throttling"] * 4 + [""]
    assert len(world.groups(build.ref.uid)) == 1


async def test_a_create_that_ran_out_of_retries_is_retried_with_the_same_token(world: EciProviderWorld) -> None:
    world.emulator.inject("CreateContainerGroup", "InternalError", times=3)  # max_attempts is 3
    build = pod("build-1", annotations={USE_SPECS: "2-4Gi,4-8Gi"})
    with pytest.raises(BackendUnavailable):
        await world.provider.create_pod(build)
    await world.provider.create_pod(build)
    assert {c.params["ClientToken"] for c in world.emulator.calls("CreateContainerGroup")} == {
        f"{build.ref.uid}-0"}
    assert len(world.groups(build.ref.uid)) == 1


async def test_an_unreachable_eci_fails_the_ping_but_no_pod(world: EciProviderWorld,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    await world.until(build.ref, lambda u: u.phase == "Running", "Running")
    await world.provider.ping()
    await stopped(world.emulator_task)
    with pytest.raises(BackendUnavailable):
        await world.provider.ping()
    caplog.set_level(logging.WARNING, logger="vnode.providers.eci.poller")

    async def failed_polls() -> bool:
        return sum("status poll failed" in r.getMessage() for r in caplog.records) >= 3
    await eventually(failed_polls, timeout_seconds=15, what="three failed status polls")
    assert all(u.phase != "Failed" for u in world.updates)


async def test_slow_instance_facts_lookups_do_not_hold_up_status(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Each facts lookup (DescribeContainerGroups by id) times out twice, about 4 s, while the group turns Running
    # 0.5 s after its create and the status is polled every 0.1 s.
    async with eci_provider_world(tmp_path, monkeypatch, read_timeout_seconds=2.0, max_attempts=2) as world:
        await world.provider.list_pods()  # adopted what the node had: creates need no lookup by tag
        world.emulator.faults.inject_latency("DescribeContainerGroups", 30)
        build = pod("build-1")
        await world.provider.create_pod(build)
        created = time.monotonic()
        await world.until(build.ref, lambda u: u.phase == "Running", "Running")
        assert time.monotonic() - created < 3.0


class GatedClock(SystemClock):
    """Real time, except that the status loop's sleep (STATUS_POLL_SECONDS) ends only when the test releases it."""

    def __init__(self) -> None:
        self.parked: asyncio.Future[None] | None = None

    async def sleep(self, seconds: float) -> None:
        if seconds != STATUS_POLL_SECONDS:
            await super().sleep(seconds)
            return
        self.parked = asyncio.get_running_loop().create_future()
        await self.parked

    async def polls(self, count: int) -> None:
        """Let the status loop run `count` more polls, each to its end."""
        for _ in range(count):
            await eventually(self._parked, timeout_seconds=10, what="the status loop to sleep")
            assert self.parked is not None
            parked, self.parked = self.parked, None
            parked.set_result(None)
        await eventually(self._parked, timeout_seconds=10, what="the status loop to sleep")

    async def _parked(self) -> bool:
        return self.parked is not None


@pytest.mark.parametrize("pods", [1, 50])
async def test_status_polls_cost_the_same_calls_for_1_or_50_pods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 pods: int) -> None:
    clock = GatedClock()
    async with eci_provider_world(tmp_path, monkeypatch, clock=clock, status_poll_seconds=STATUS_POLL_SECONDS,
                                  full_resync_seconds=0.3) as world:
        for n in range(pods):
            await world.provider.create_pod(pod(f"build-{n}"))
        await clock.polls(1)
        before = len(world.emulator.calls("DescribeContainerGroupStatus"))
        await clock.polls(5)
        assert len(world.emulator.calls("DescribeContainerGroupStatus")) - before == 5
