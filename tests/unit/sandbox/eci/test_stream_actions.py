"""The emulator's streaming actions without HTTP: Command parsing and limits, exec tokens, the log size cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vnode.clock import ManualClock
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.exec_ws import ExecTickets
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec
from vnode.sandbox.eci.sim_runtime import SimRuntime
from vnode.sandbox.eci.store import GroupStore
from vnode.sandbox.eci.stream_actions import MAX_LOG_BYTES, EciStreamActions, command_words

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_command_is_a_json_array() -> None:
    assert command_words({"Command": '["sh", "-c", "echo hi"]'}) == ("sh", "-c", "echo hi")


def test_a_command_that_is_not_json_runs_as_one_word() -> None:
    assert command_words({"Command": "/monitor.sh"}) == ("/monitor.sh",)


@pytest.mark.parametrize("text", ['{"a": 1}', "[]", "[1, 2]"])
def test_a_command_that_is_not_a_list_of_strings_is_invalid(text: str) -> None:
    with pytest.raises(EciApiError) as caught:
        command_words({"Command": text})
    assert caught.value.code == "InvalidParameter"


def test_twenty_items_of_256_characters_are_the_most() -> None:
    assert len(command_words({"Command": '["' + '","'.join(["x" * 256] * 20) + '"]'})) == 20


def test_a_missing_command_is_a_missing_parameter() -> None:
    with pytest.raises(EciApiError) as caught:
        command_words({})
    assert caught.value.code == "MissingParameter"


def test_a_token_is_redeemed_once() -> None:
    tickets = ExecTickets(ManualClock(START), token_seconds=30)
    token = tickets.issue("eci-1", "main", ["true"], tty=False, stdin=True)
    ticket = tickets.redeem(token)
    assert ticket is not None and (ticket.group_id, ticket.command) == ("eci-1", ("true",))
    assert tickets.redeem(token) is None


async def test_a_token_expires() -> None:
    clock = ManualClock(START)
    tickets = ExecTickets(clock, token_seconds=30)
    token = tickets.issue("eci-1", "main", ["true"], tty=False, stdin=True)
    await clock.advance(30)
    assert tickets.redeem(token) is None


async def test_log_content_is_capped_at_one_mebibyte() -> None:
    clock = ManualClock(START)
    runtime = SimRuntime(clock)
    store = GroupStore(clock, runtime)
    log = "\n".join(f"{n:04d}" + "x" * 700 for n in range(2000))  # 1.4 MB
    spec = ContainerSpec(name="main", image="busybox", env=(("VNODE_SIM_LOG", log),))
    draft = ContainerGroup(id="", name="big", seq=0, region_id="cn-hangzhou", zone_id="cn-hangzhou-h", cpu=2,
                           memory=4, restart_policy="Never", tags=(), containers=(spec,), init_containers=(),
                           volumes=(), created=START, intranet_ip="")
    group, _ = store.create(draft, None)
    await clock.advance(10)
    actions = EciStreamActions(store, runtime, clock, endpoint=lambda: "http://127.0.0.1:1")
    answer = await actions.describe_container_log({"ContainerGroupId": group.id, "ContainerName": "main",
                                                   "Tail": "2000"})
    assert len(answer["Content"].encode()) == MAX_LOG_BYTES and answer["Content"].startswith("0000x")
