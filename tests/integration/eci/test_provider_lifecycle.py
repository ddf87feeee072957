"""EciProvider against the ECI emulator through the real SDK: a pod's life (Pending → Running → Succeeded/Failed),
restarts, instance annotations, events, deletion and idempotent creation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.eci.provider_world import EciProviderWorld, eci_provider_world, pod
from tests.support.wait import eventually
from vnode.providers.eci import status


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EciProviderWorld]:
    async with eci_provider_world(tmp_path, monkeypatch) as running:
        yield running


def group_id(world: EciProviderWorld, uid: str) -> str:
    [group] = world.groups(uid)
    return group.id


async def test_created_pod_is_pending_then_running_with_its_ip(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    first = world.latest(build.ref)
    assert first is not None and first.phase == "Pending"
    assert [c.state.reason for c in first.containers] == ["ContainerCreating"]
    running = await world.until(build.ref, lambda u: u.phase == "Running", "Running")
    assert running.pod_ip and running.containers[0].state.kind == "running" and running.containers[0].ready
    assert running.start_time is not None


async def test_running_pod_carries_its_instance_facts_as_annotations(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    update = await world.until(build.ref, lambda u: status.ANN_ID in u.annotations, "instance annotations")
    facts = update.annotations
    assert facts[status.ANN_ID] == group_id(world, build.ref.uid)
    assert facts[status.ANN_ZONE] == world.emulator.settings.zone_id
    assert facts[status.ANN_SPOT] == "NoSpot" and facts[status.ANN_SPEC].endswith("Gi")


async def test_finished_pod_succeeds_with_exit_code_zero(world: EciProviderWorld) -> None:
    build = pod("build-1", env={"VNODE_SIM_RUN_SECONDS": "0.5"})
    await world.provider.create_pod(build)
    done = await world.until(build.ref, lambda u: u.phase in status.TERMINAL, "a terminal phase")
    state = done.containers[0].state
    assert (done.phase, state.kind, state.exit_code) == ("Succeeded", "terminated", 0)


async def test_non_zero_exit_fails_the_pod_with_its_code(world: EciProviderWorld) -> None:
    build = pod("build-1", env={"VNODE_SIM_RUN_SECONDS": "0.5", "VNODE_SIM_EXIT_CODE": "3"})
    await world.provider.create_pod(build)
    done = await world.until(build.ref, lambda u: u.phase in status.TERMINAL, "a terminal phase")
    assert done.phase == "Failed" and done.containers[0].state.exit_code == 3


async def test_restart_policy_always_counts_restarts(world: EciProviderWorld) -> None:
    service = pod("svc-1", env={"VNODE_SIM_RUN_SECONDS": "0.5", "VNODE_SIM_EXIT_CODE": "1"}, restart_policy="Always")
    await world.provider.create_pod(service)
    again = await world.until(service.ref, lambda u: bool(u.containers) and u.containers[0].restart_count >= 2,
                              "two restarts")
    container = again.containers[0]
    assert again.phase == "Running"
    assert container.last_state is not None and container.last_state.exit_code == 1


async def test_ecis_events_reach_the_pod_once_each(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)

    async def started() -> bool:
        return "Started" in [reason for _, reason, _ in world.events(build.ref)]
    await eventually(started, timeout_seconds=15, what="the Started event")
    polls = len(world.emulator.calls("DescribeContainerGroupEvents"))

    async def polled_thrice_more() -> bool:
        return len(world.emulator.calls("DescribeContainerGroupEvents")) >= polls + 3
    # Later polls overlap the same 60 s window: they must not tell the same events again.
    await eventually(polled_thrice_more, timeout_seconds=15, what="three more event polls")
    reasons = [reason for _, reason, _ in world.events(build.ref)]
    assert reasons.count("Pulled") == 1 and reasons.count("Started") == 1


async def test_delete_removes_the_group_and_reports_the_pod_terminated(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    await world.until(build.ref, lambda u: u.phase == "Running", "Running")
    await world.provider.delete_pod(build.ref, 30)
    assert world.groups(build.ref.uid) == []
    final = world.latest(build.ref)
    assert final is not None and final.phase == "Failed"
    assert all(c.state.kind == "terminated" for c in final.containers)


async def test_deleting_an_unknown_pod_is_not_an_error(world: EciProviderWorld) -> None:
    await world.provider.delete_pod(pod("never-created").ref, 0)
    assert [c.code for c in world.emulator.calls("DeleteContainerGroup")] == []


async def test_creating_the_same_pod_twice_makes_one_group(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    await world.provider.create_pod(build)
    assert len(world.groups(build.ref.uid)) == 1
    assert len(world.emulator.calls("CreateContainerGroup")) == 1


async def test_a_group_deleted_outside_vnode_fails_the_pod_as_lost(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    await world.until(build.ref, lambda u: u.phase == "Running", "Running")
    world.emulator.store.delete(group_id(world, build.ref.uid))
    lost = await world.until(build.ref, lambda u: u.phase == "Failed", "Failed")
    assert lost.reason == status.LOST_REASON


async def test_the_create_token_derives_from_the_pod_uid(world: EciProviderWorld) -> None:
    build = pod("build-1")
    await world.provider.create_pod(build)
    [create] = world.emulator.calls("CreateContainerGroup")
    assert create.params["ClientToken"] == f"{build.ref.uid}-0"
