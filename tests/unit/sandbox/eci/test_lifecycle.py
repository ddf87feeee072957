"""The group state machine and the sim runtime, driven by a ManualClock through the actions."""

from __future__ import annotations

from typing import Any

import pytest

from vnode.clock import ManualClock
from vnode.sandbox.eci.actions import EciActions
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.sim_runtime import SimRuntime, SimTimings
from vnode.sandbox.eci.store import GroupStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def actions(clock: ManualClock) -> EciActions:
    runtime = SimRuntime(clock, SimTimings(scheduling_seconds=1, pending_seconds=2, restart_seconds=2))
    store = GroupStore(clock, runtime, retention_seconds=3600)
    return EciActions(store, clock, region_id="cn-hangzhou", zone_id="cn-hangzhou-h")


def create(actions: EciActions, *, env: dict[str, str] | None = None, restart: str = "Never",
           command: list[str] | None = None, extra: dict[str, str] | None = None) -> str:
    params = {"ContainerGroupName": "build", "RestartPolicy": restart, "Container.1.Name": "main",
              "Container.1.Image": "busybox", **(extra or {})}
    for n, (key, value) in enumerate((env or {}).items(), start=1):
        params[f"Container.1.EnvironmentVar.{n}.Key"] = key
        params[f"Container.1.EnvironmentVar.{n}.Value"] = value
    for n, word in enumerate(command or [], start=1):
        params[f"Container.1.Command.{n}"] = word
    group_id: str = actions.create_container_group(params)["ContainerGroupId"]
    return group_id


def describe(actions: EciActions, group_id: str) -> dict[str, Any]:
    groups: list[dict[str, Any]] = actions.describe_container_groups(
        {"ContainerGroupIds": f'["{group_id}"]'})["ContainerGroups"]
    return groups[0]


async def test_group_goes_scheduling_pending_running_succeeded(actions: EciActions, clock: ManualClock) -> None:
    group_id = create(actions, env={"VNODE_SIM_RUN_SECONDS": "10"})
    seen = [describe(actions, group_id)["Status"]]
    for step in (1, 2, 10):
        await clock.advance(step)
        seen.append(describe(actions, group_id)["Status"])
    assert seen == ["Scheduling", "Pending", "Running", "Succeeded"]


async def test_non_zero_exit_code_fails_the_group(actions: EciActions, clock: ManualClock) -> None:
    group_id = create(actions, env={"VNODE_SIM_RUN_SECONDS": "5", "VNODE_SIM_EXIT_CODE": "3"})
    await clock.advance(8)
    group = describe(actions, group_id)
    assert group["Status"] == "Failed"
    assert group["Containers"][0]["CurrentState"]["ExitCode"] == 3


async def test_outcome_read_from_the_command(actions: EciActions, clock: ManualClock) -> None:
    group_id = create(actions, command=["sh", "-c", "sleep 4; exit 2"])
    await clock.advance(3 + 3.9)
    assert describe(actions, group_id)["Status"] == "Running"
    await clock.advance(0.2)
    assert describe(actions, group_id)["Status"] == "Failed"


async def test_no_outcome_runs_until_deleted(actions: EciActions, clock: ManualClock) -> None:
    group_id = create(actions)
    await clock.advance(86400)
    assert describe(actions, group_id)["Status"] == "Running"


async def test_restart_policy_always_restarts_an_exited_container(actions: EciActions, clock: ManualClock) -> None:
    group_id = create(actions, env={"VNODE_SIM_RUN_SECONDS": "10"}, restart="Always")
    await clock.advance(3 + 25)
    container = describe(actions, group_id)["Containers"][0]
    assert (container["RestartCount"], container["CurrentState"]["State"]) == (2, "Running")
    assert container["PreviousState"]["State"] == "Terminated"


async def test_finished_group_is_forgotten_after_retention(actions: EciActions, clock: ManualClock) -> None:
    group_id = create(actions, env={"VNODE_SIM_RUN_SECONDS": "1"})
    await clock.advance(4 + 3599)
    assert actions.describe_container_groups({})["TotalCount"] == 1
    await clock.advance(2)
    assert actions.describe_container_groups({})["TotalCount"] == 0
    with pytest.raises(EciApiError, match="NotFound"):
        actions.delete_container_group({"ContainerGroupId": group_id})


def test_same_client_token_returns_the_same_group(actions: EciActions) -> None:
    first = create(actions, extra={"ClientToken": "token-1"})
    again = create(actions, extra={"ClientToken": "token-1"})
    assert first == again and len(actions.store) == 1


def test_describe_filters_by_every_tag(actions: EciActions) -> None:
    wanted = create(actions, extra={"Tag.1.Key": "node", "Tag.1.Value": "a", "Tag.2.Key": "pod", "Tag.2.Value": "x"})
    create(actions, extra={"Tag.1.Key": "node", "Tag.1.Value": "a"})
    found = actions.describe_container_groups({"Tag.1.Key": "node", "Tag.1.Value": "a", "Tag.2.Key": "pod",
                                               "Tag.2.Value": "x"})
    assert [g["ContainerGroupId"] for g in found["ContainerGroups"]] == [wanted]


def test_next_token_pages_through_everything_once(actions: EciActions) -> None:
    created = [create(actions) for _ in range(5)]
    seen: list[str] = []
    token = ""
    while True:
        page = actions.describe_container_groups({"Limit": "2", "NextToken": token})
        seen += [g["ContainerGroupId"] for g in page["ContainerGroups"]]
        token = page["NextToken"]
        if not token:
            break
    assert seen == created


async def test_since_second_returns_only_recent_changes(actions: EciActions, clock: ManualClock) -> None:
    old = create(actions)
    await clock.advance(300)
    fresh = create(actions)
    data = actions.describe_container_group_status({"SinceSecond": "60"})["Data"]
    assert [item["ContainerGroupId"] for item in data] == [fresh] and old != fresh


def test_since_second_below_sixty_is_refused(actions: EciActions) -> None:
    with pytest.raises(EciApiError, match="InvalidParameter"):
        actions.describe_container_group_status({"SinceSecond": "10"})


async def test_status_is_kubernetes_shaped(actions: EciActions, clock: ManualClock) -> None:
    create(actions)
    await clock.advance(3)
    item = actions.describe_container_group_status({})["Data"][0]
    assert item["PodStatus"]["Phase"] == "Running"
    assert {"type": "Ready", "status": "True"}.items() <= item["PodStatus"]["Conditions"][-1].items()
    assert "Running" in item["PodStatus"]["ContainerStatuses"][0]["State"]


async def test_events_follow_the_timeline(actions: EciActions, clock: ManualClock) -> None:
    create(actions)
    await clock.advance(3)
    events = actions.describe_container_group_events({})["Data"][0]["Events"]
    assert [e["Reason"] for e in events] == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


def test_delete_with_the_same_client_token_is_idempotent(actions: EciActions) -> None:
    group_id = create(actions)
    for _ in range(2):
        actions.delete_container_group({"ContainerGroupId": group_id, "ClientToken": "del-1"})
    assert len(actions.store) == 0


def test_deleting_a_missing_group_is_not_found(actions: EciActions) -> None:
    with pytest.raises(EciApiError) as caught:
        actions.delete_container_group({"ContainerGroupId": "eci-missing"})
    assert (caught.value.code, caught.value.http_status) == ("InvalidContainerGroupId.NotFound", 404)


def test_bad_group_name_is_refused(actions: EciActions) -> None:
    with pytest.raises(EciApiError, match="InvalidParameter"):
        actions.create_container_group({"ContainerGroupName": "Build_1", "Container.1.Name": "c",
                                        "Container.1.Image": "busybox"})
