"""DescribeContainerLog against the emulator: its parameters and caps through the real SDK, and `EciLogReader`'s
snapshots and follow over it. The sim runtime prints a container's env VNODE_SIM_LOG when each run starts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.DescribeContainerLogRequest import DescribeContainerLogRequest

from tests.integration.eci.conftest import Sdk
from tests.integration.eci.streams_support import running_group
from tests.support.wait import eventually
from vnode.clock import ManualClock, SystemClock, parse_rfc3339, rfc3339
from vnode.errors import NotFound
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.logs import EciLogReader
from vnode.providers.streams import LogOptions
from vnode.sandbox.eci.server import EciEmulator

LOG = "one\ntwo\nthree"


@pytest.fixture
async def group_id(client: EciClient, clock: ManualClock) -> str:
    return await running_group(client, clock, "logs", log=LOG)


@pytest.fixture
def reader(client: EciClient) -> EciLogReader:
    return EciLogReader(client, SystemClock(), poll_seconds=0.01)


def log_request(group_id: str, container: str = "main", **fields: Any) -> DescribeContainerLogRequest:
    request = DescribeContainerLogRequest()
    request.set_ContainerGroupId(group_id)
    request.set_ContainerName(container)
    for name, value in fields.items():
        getattr(request, f"set_{name}")(value)
    return request


async def content(sdk: Sdk, group_id: str, **fields: Any) -> str:
    answer = await sdk.call(log_request(group_id, **fields))
    assert answer["ContainerName"] == "main"
    text: str = answer["Content"]
    return text


async def error_of(sdk: Sdk, request: DescribeContainerLogRequest) -> tuple[int, str]:
    with pytest.raises(ServerException) as caught:
        await sdk.call(request)
    return caught.value.get_http_status(), caught.value.get_error_code()


async def read_all(reader: EciLogReader, group_id: str, options: LogOptions, container: str = "main") -> bytes:
    return b"".join([chunk async for chunk in reader.read(group_id, container, options, still_running=lambda: False)])


def run_started(stamped_line: str) -> datetime:
    return parse_rfc3339(stamped_line.split(" ", 1)[0])


# The action


async def test_the_whole_log_by_default(sdk: Sdk, group_id: str) -> None:
    assert await content(sdk, group_id) == "one\ntwo\nthree\n"


async def test_tail_defaults_to_500_lines(sdk: Sdk, client: EciClient, clock: ManualClock) -> None:
    group = await running_group(client, clock, "long-log", log="\n".join(str(n) for n in range(600)))
    lines = (await content(sdk, group)).splitlines()
    assert len(lines) == 500 and lines[-1] == "599"


async def test_tail_and_limit_bytes(sdk: Sdk, group_id: str) -> None:
    assert await content(sdk, group_id, Tail=2) == "two\nthree\n"
    assert await content(sdk, group_id, LimitBytes=6) == "one\ntw"


@pytest.mark.parametrize(("field", "value"), [("Tail", 2001), ("Tail", -1), ("LimitBytes", 0),
                                              ("LimitBytes", 1048577), ("SinceSeconds", 0)])
async def test_out_of_range_values_are_value_exceeded(sdk: Sdk, group_id: str, field: str, value: int) -> None:
    fields: dict[str, Any] = {field: value}
    assert await error_of(sdk, log_request(group_id, **fields)) == (400, "InvalidParameter.ValueExceeded")


async def test_timestamps_prefix_each_line_with_its_rfc3339_time(sdk: Sdk, group_id: str,
                                                                 clock: ManualClock) -> None:
    lines = (await content(sdk, group_id, Timestamps=True)).splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two", "three"]
    assert timedelta(0) < clock.now() - run_started(lines[0]) < timedelta(seconds=5)


async def test_start_time_and_since_seconds_select_by_time(sdk: Sdk, group_id: str, clock: ManualClock) -> None:
    assert await content(sdk, group_id, StartTime=rfc3339(clock.now() + timedelta(seconds=1))) == ""
    assert await content(sdk, group_id, StartTime=rfc3339(clock.now() - timedelta(seconds=60))) == LOG + "\n"
    assert await content(sdk, group_id, SinceSeconds=60) == LOG + "\n"
    await clock.advance(120)
    assert await content(sdk, group_id, SinceSeconds=60) == ""


async def test_last_time_reads_the_previous_instance(sdk: Sdk, client: EciClient, clock: ManualClock) -> None:
    group = await running_group(client, clock, "restarts", log="run", restart_policy="Always",
                                env={"VNODE_SIM_RUN_SECONDS": "10"})
    current = run_started(await content(sdk, group, Timestamps=True))
    await clock.advance(10)
    previous = run_started(await content(sdk, group, Timestamps=True, LastTime=True))
    assert previous == current and run_started(await content(sdk, group, Timestamps=True)) > current


async def test_last_time_without_a_previous_instance_is_refused(sdk: Sdk, group_id: str) -> None:
    assert (await error_of(sdk, log_request(group_id, LastTime=True)))[0] == 400


async def test_unknown_group_and_container_are_not_found(sdk: Sdk, group_id: str) -> None:
    assert (await error_of(sdk, log_request("eci-missing")))[0] == 404
    assert (await error_of(sdk, log_request(group_id, "nope")))[0] == 404


# EciLogReader: snapshots


async def test_reader_without_tail_asks_for_all_eci_gives(reader: EciLogReader, group_id: str,
                                                          emulator: EciEmulator) -> None:
    assert await read_all(reader, group_id, LogOptions()) == b"one\ntwo\nthree\n"
    sent = emulator.calls("DescribeContainerLog")[-1].params
    assert (sent["Tail"], sent["LimitBytes"]) == ("2000", "1048576")


async def test_reader_tail_timestamps_and_limit(reader: EciLogReader, group_id: str) -> None:
    assert await read_all(reader, group_id, LogOptions(tail_lines=1)) == b"three\n"
    stamped = (await read_all(reader, group_id, LogOptions(timestamps=True))).decode().splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two", "three"]
    assert await read_all(reader, group_id, LogOptions(limit_bytes=5)) == b"one\nt"


async def test_reader_since_time_is_exact_below_a_second(reader: EciLogReader, group_id: str,
                                                         emulator: EciEmulator, sdk: Sdk) -> None:
    started = run_started(await content(sdk, group_id, Timestamps=True))
    before, after = started - timedelta(microseconds=1), started + timedelta(microseconds=1)
    assert await read_all(reader, group_id, LogOptions(since_time=before, limit_bytes=4)) == b"one\n"
    assert await read_all(reader, group_id, LogOptions(since_time=after)) == b""
    sent = emulator.calls("DescribeContainerLog")[-1].params
    assert sent["StartTime"] == rfc3339(after) and sent["Timestamps"] == "true"  # whole seconds, filtered here


async def test_reader_previous_instance(reader: EciLogReader, client: EciClient, clock: ManualClock,
                                        emulator: EciEmulator) -> None:
    group = await running_group(client, clock, "prev", log="earlier", restart_policy="Always",
                                env={"VNODE_SIM_RUN_SECONDS": "10"})
    await clock.advance(10)
    assert await read_all(reader, group, LogOptions(previous=True, follow=True)) == b"earlier\n"
    assert emulator.calls("DescribeContainerLog")[-1].params["LastTime"] == "true"


async def test_reader_unknown_container_is_not_found(reader: EciLogReader, group_id: str) -> None:
    with pytest.raises(NotFound):
        await read_all(reader, group_id, LogOptions(), container="nope")


# EciLogReader: follow


async def test_follow_shows_each_run_once_while_polls_overlap(reader: EciLogReader, client: EciClient,
                                                              clock: ManualClock, emulator: EciEmulator) -> None:
    # Each run (one a second) prints the same two lines: only their timestamps tell the runs apart.
    group = await running_group(client, clock, "ticks", log="tick\ntock", restart_policy="Always",
                                env={"VNODE_SIM_RUN_SECONDS": "1"})
    running = True
    received = bytearray()
    stream = cast(AsyncGenerator[bytes, None], reader.read(group, "main", LogOptions(follow=True),
                                                           still_running=lambda: running))

    async def pump() -> None:
        async for chunk in stream:
            received.extend(chunk)

    task = asyncio.create_task(pump(), name="follow")
    try:
        for run in range(1, 5):
            async def shown(runs: int = run) -> bool:
                return bytes(received) == b"tick\ntock\n" * runs
            await eventually(shown, what=f"run {run}'s lines once")
            polls = len(emulator.calls("DescribeContainerLog"))
            await eventually(partial(_more_calls, emulator, polls + 2), what="two more polls of the same run")
            await clock.advance(1)  # the next run prints the same lines at a new time
        running = False
        async with asyncio.timeout(10):
            await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.aclose()
    assert bytes(received) == b"tick\ntock\n" * 5  # the fifth run is seen by the final poll


async def _more_calls(emulator: EciEmulator, count: int) -> bool:
    return len(emulator.calls("DescribeContainerLog")) >= count


async def test_follow_stops_with_the_limit(reader: EciLogReader, group_id: str) -> None:
    options = LogOptions(follow=True, limit_bytes=6)
    chunks = [c async for c in reader.read(group_id, "main", options, still_running=lambda: True)]
    assert b"".join(chunks) == b"one\ntw"


async def test_follow_with_timestamps_keeps_them(reader: EciLogReader, group_id: str) -> None:
    options = LogOptions(follow=True, timestamps=True, tail_lines=1)
    text = b"".join([c async for c in reader.read(group_id, "main", options, still_running=lambda: False)])
    assert text.decode().split(" ", 1)[1] == "three\n"
