"""ECI status answers → PodStatusUpdate: both key casings, the three spellings of a running container's start,
group Status → phase, and the statuses vnode decides itself (deleted, lost, expired)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from vnode.providers.base import ContainerState, ContainerStatus, PodRef, PodStatusUpdate
from vnode.providers.eci import status

REF = PodRef("default", "build-1", "uid-1")
T0, T1, T2 = "2026-01-01T10:00:00Z", "2026-01-01T10:00:05Z", "2026-01-01T10:01:00Z"


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def item(group_status: str, containers: list[dict[str, Any]], **pod: Any) -> dict[str, Any]:
    return {"ContainerGroupId": "eci-1", "uuid": "eci-1", "Status": group_status,
            "PodStatus": {"Phase": "Running", "PodIp": "10.0.0.7", "StartTime": T0, "ContainerStatuses": containers,
                          **pod}}


def running(key: str = "StartedAt", **extra: Any) -> dict[str, Any]:
    return {"Name": "main", "Image": "busybox", "ImageID": "sha256:abc", "Ready": True, "Started": True,
            "RestartCount": 0, "State": {"Running": {key: T1}}, **extra}


@pytest.mark.parametrize("key", ["StartedAt", "startedAt", "StartedAtstartedAt", "startedatstartedat"])
def test_running_container_start_is_read_from_every_spelling(key: str) -> None:
    update = status.from_status_item(item("Running", [running(key)]), REF, previous=None)
    assert update is not None and update.phase == "Running" and update.pod_ip == "10.0.0.7"
    assert update.containers[0].state == ContainerState("running", started_at=at(T1))
    assert update.containers[0].ready and update.containers[0].image_id == "sha256:abc"


def test_running_without_a_start_key_falls_back_to_the_pods_start_time() -> None:
    update = status.from_status_item(item("Running", [running("Unknown")]), REF, previous=None)
    assert update is not None and update.containers[0].state.started_at == at(T0)
    assert update.start_time == at(T0)


def test_lower_camel_answer_reads_like_the_upper_camel_one() -> None:
    upper = item("Running", [running()])
    lower = {"containerGroupId": "eci-1", "status": "Running",
             "podStatus": {"phase": "Running", "podIp": "10.0.0.7", "startTime": T0, "containerStatuses": [
                 {"name": "main", "image": "busybox", "imageID": "sha256:abc", "ready": True, "started": True,
                  "restartCount": 0, "state": {"running": {"startedAt": T1}}}]}}
    assert status.from_status_item(lower, REF, previous=None) == status.from_status_item(upper, REF, previous=None)


def test_succeeded_group_reports_terminated_containers_with_exit_codes() -> None:
    done = {"Name": "main", "Image": "busybox", "Ready": False, "Started": False, "RestartCount": 0,
            "State": {"Terminated": {"ExitCode": 0, "Reason": "Completed", "StartedAt": T1, "FinishedAt": T2,
                                     "ContainerID": "containerd://c1"}}}
    update = status.from_status_item(item("Succeeded", [done]), REF, previous=None)
    assert update is not None and update.phase == "Succeeded"
    state = update.containers[0].state
    assert (state.kind, state.exit_code, state.reason, state.finished_at) == ("terminated", 0, "Completed", at(T2))
    assert update.containers[0].container_id == "containerd://c1"


def test_failed_group_keeps_the_non_zero_exit_code() -> None:
    crashed = {"Name": "main", "State": {"terminated": {"exitCode": 3, "reason": "Error", "finishedAt": T2}}}
    update = status.from_status_item(item("Failed", [crashed]), REF, previous=None)
    assert update is not None and update.phase == "Failed" and update.containers[0].state.exit_code == 3


def test_restarts_carry_the_count_and_the_last_termination() -> None:
    again = running(RestartCount=2, LastState={"Terminated": {"ExitCode": 1, "Reason": "Error", "FinishedAt": T1}})
    update = status.from_status_item(item("Running", [again]), REF, previous=None)
    assert update is not None
    container = update.containers[0]
    assert container.restart_count == 2 and container.last_state is not None
    assert (container.last_state.kind, container.last_state.exit_code) == ("terminated", 1)


def test_zero_valued_states_of_a_go_service_pick_the_one_with_content() -> None:
    waiting = {"Name": "main", "State": {"Running": {"StartedAt": ""}, "Waiting": {"Reason": "ContainerCreating"},
                                         "Terminated": {"ExitCode": 0, "Reason": "", "FinishedAt": ""}}}
    update = status.from_status_item(item("Pending", [waiting], Phase="Pending"), REF, previous=None)
    assert update is not None and update.phase == "Pending"
    assert update.containers[0].state == ContainerState("waiting", reason="ContainerCreating")


@pytest.mark.parametrize(("group_status", "phase"), [("Scheduling", "Pending"), ("Pending", "Pending"),
                                                     ("Restarting", "Running"), ("Updating", "Running")])
def test_group_status_decides_the_phase(group_status: str, phase: str) -> None:
    update = status.from_status_item(item(group_status, [running()], Phase="Unknown"), REF, previous=None)
    assert update is not None and update.phase == phase


def test_terminating_keeps_the_pods_status_and_moves_only_the_group_state() -> None:
    previous = status.from_status_item(item("Running", [running()]), REF, previous=None)
    assert previous is not None and previous.backend_state == "Running"
    update = status.from_status_item(item("Terminating", [running()], Phase="Unknown"), REF, previous=previous)
    assert update == replace(previous, backend_state="Terminating")
    assert status.from_status_item(item("Terminating", [running()]), REF, previous=None) is None


def test_schedule_failed_stays_pending_with_the_conditions_reason() -> None:
    conditions = [{"type": "ContainerInstanceCreated", "status": "False", "Reason": "NoStock",
                   "Message": "no stock in cn-hangzhou-h"}]
    answer = item("ScheduleFailed", [], Phase="Pending", Conditions=conditions)
    update = status.from_status_item(answer, REF, previous=None)
    assert update is not None
    assert (update.phase, update.reason, update.message) == ("Pending", "ContainerGroup.NoStock",
                                                             "no stock in cn-hangzhou-h")


def test_schedule_failed_fails_the_pod_under_fail_on_create_error() -> None:
    previous = PodStatusUpdate(REF, "Pending", containers=(
        ContainerStatus("main", ContainerState("waiting", reason="ContainerCreating")),))
    update = status.from_status_item(item("ScheduleFailed", [], Phase="Pending"), REF, previous=previous,
                                     fail_fast=True)
    assert update is not None and update.phase == "Failed"
    assert update.reason == "ContainerInstanceScheduleFailed"
    assert update.containers[0].state.kind == "terminated"


def test_expired_group_fails_the_pod_and_ends_its_containers() -> None:
    update = status.from_status_item(item("Expired", [running()]), REF, previous=None)
    assert update is not None and (update.phase, update.reason) == ("Failed", "Expired")
    assert update.containers[0].state.kind == "terminated" and update.containers[0].state.exit_code == 143


def test_running_group_without_init_statuses_reports_init_containers_done() -> None:
    previous = PodStatusUpdate(REF, "Pending", init_containers=(
        ContainerStatus("init", ContainerState("waiting", reason="PodInitializing")),))
    update = status.from_status_item(item("Running", [running()]), REF, previous=previous)
    assert update is not None
    assert update.init_containers[0].state == ContainerState("terminated", reason="Completed", exit_code=0)


def test_describe_container_groups_item_maps_current_and_previous_state() -> None:
    group = {"ContainerGroupId": "eci-1", "Status": "Running", "IntranetIp": "10.0.0.9", "Containers": [
        {"Name": "main", "Image": "busybox", "Ready": True, "RestartCount": 1,
         "CurrentState": {"State": "Running", "StartTime": T1},
         "PreviousState": {"State": "Terminated", "ExitCode": 2, "Reason": "Error", "FinishTime": T1}}]}
    update = status.from_group_item(group, REF)
    container = update.containers[0]
    assert (update.phase, update.pod_ip, update.start_time) == ("Running", "10.0.0.9", at(T1))
    assert container.state.kind == "running" and container.restart_count == 1
    assert container.last_state is not None and container.last_state.exit_code == 2


def test_instance_facts_become_annotations() -> None:
    group = {"containerGroupId": "eci-1", "cpu": 2, "memory": 4, "zoneId": "cn-hangzhou-h",
             "spotStrategy": "SpotAsPriceGo", "instanceType": ""}
    assert status.instance_annotations(group) == {
        status.ANN_ID: "eci-1", status.ANN_CPU: "2.0", status.ANN_MEMORY: "4.0", status.ANN_SPEC: "2.0-4.0Gi",
        status.ANN_ZONE: "cn-hangzhou-h", status.ANN_SPOT: "SpotAsPriceGo"}


def test_instance_type_is_the_spec_when_the_group_has_one() -> None:
    facts = status.instance_annotations({"ContainerGroupId": "eci-1", "Cpu": 4, "Memory": 8,
                                         "InstanceType": "ecs.c6.xlarge"})
    assert facts[status.ANN_SPEC] == facts[status.ANN_TYPE] == "ecs.c6.xlarge"
    assert facts[status.ANN_SPOT] == "NoSpot"


def test_deleted_pod_ends_running_containers_as_sigterm_and_fails() -> None:
    previous = PodStatusUpdate(REF, "Running", containers=(
        ContainerStatus("main", ContainerState("running", started_at=at(T1)), ready=True),
        ContainerStatus("side", ContainerState("waiting", reason="ContainerCreating"))))
    final = status.deleted(previous)
    assert final.phase == "Failed" and all(c.state.kind == "terminated" and not c.ready for c in final.containers)
    assert [c.state.exit_code for c in final.containers] == [143, 137]


def test_deleting_a_finished_pod_keeps_its_status() -> None:
    done = PodStatusUpdate(REF, "Succeeded", containers=(
        ContainerStatus("main", ContainerState("terminated", reason="Completed", exit_code=0)),))
    assert status.deleted(done) == done


def test_lost_group_fails_the_pod_with_a_reason() -> None:
    previous = PodStatusUpdate(REF, "Running", containers=(
        ContainerStatus("main", ContainerState("running", started_at=at(T1))),))
    final = status.lost(previous)
    assert (final.phase, final.reason) == ("Failed", status.LOST_REASON)
    assert final.containers[0].state.kind == "terminated"


@pytest.mark.parametrize("text", ["", "0001-01-01T00:00:00Z", "yesterday", None])
def test_unreadable_times_are_none(text: str | None) -> None:
    assert status.parse_time(text) is None


def test_times_without_zone_are_utc() -> None:
    assert status.parse_time("2026-01-01T10:00:00") == datetime(2026, 1, 1, 10, tzinfo=UTC)
