"""status.py: engine inspects as the kubelet's container states."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vnode.providers.docker import status

STARTED, FINISHED = "2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:09Z"


def _inspect(**state: Any) -> dict[str, Any]:
    return {"Id": "abc", "Image": "sha256:def", "Config": {"Image": "img:1"}, "State": {
        "Status": "exited", "Running": False, "ExitCode": 0, "OOMKilled": False, "StartedAt": STARTED,
        "FinishedAt": FINISHED, "Error": "", **state}}


def test_engine_times_are_parsed_to_utc_microseconds_and_go_zero_time_is_none() -> None:
    assert status.parse_time(STARTED) == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert status.parse_time("0001-01-01T00:00:00Z") is None


def test_a_running_container_is_running_started_and_ready() -> None:
    result = status.container_status("main", _inspect(Status="running", Running=True), restart_count=2)
    assert (result.state.kind, result.ready, result.started, result.restart_count) == ("running", True, True, 2)
    assert (result.container_id, result.image, result.image_id) == ("docker://abc", "img:1", "docker://sha256:def")


def test_exit_zero_is_completed() -> None:
    state = status.container_state(_inspect())
    assert (state.kind, state.reason, state.exit_code, state.container_id) == ("terminated", "Completed", 0,
                                                                               "docker://abc")


def test_a_non_zero_exit_is_error_with_its_times() -> None:
    state = status.container_state(_inspect(ExitCode=2))
    assert (state.reason, state.exit_code, state.finished_at) == ("Error", 2, datetime(2026, 1, 2, 3, 4, 9,
                                                                                       tzinfo=UTC))


def test_oom_killed_wins_over_the_exit_code() -> None:
    assert status.container_state(_inspect(ExitCode=137, OOMKilled=True)).reason == "OOMKilled"


def test_a_created_container_is_waiting_container_creating() -> None:
    state = status.container_state(_inspect(Status="created", StartedAt="0001-01-01T00:00:00Z"))
    assert (state.kind, state.reason) == ("waiting", "ContainerCreating")


def test_a_container_that_could_not_start_is_terminated_container_cannot_run() -> None:
    state = status.container_state(_inspect(Status="created", ExitCode=127, Error="exec: not found"))
    assert (state.kind, state.reason, state.exit_code, state.message) == (
        "terminated", "ContainerCannotRun", 127, "exec: not found")


def test_the_previous_instance_becomes_last_state() -> None:
    result = status.container_status("main", _inspect(Status="running", Running=True), previous=_inspect(ExitCode=1))
    assert result.last_state is not None and result.last_state.reason == "Error"


def test_pod_ip_is_the_sandbox_address_on_the_pod_network() -> None:
    sandbox = {"NetworkSettings": {"IPAddress": "", "Networks": {"pods": {"IPAddress": "10.1.0.5"}}}}
    assert status.pod_ip(sandbox, "pods") == "10.1.0.5"
    assert status.pod_ip({"NetworkSettings": {"Networks": {"none": {"IPAddress": ""}}}}, "none") == ""
