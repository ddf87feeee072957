"""DescribeContainerGroupMetric and DescribeMultiContainerGroupMetric through the real SDK, on a ManualClock."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.CreateContainerGroupRequest import CreateContainerGroupRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupMetricRequest import DescribeContainerGroupMetricRequest
from aliyunsdkeci.request.v20180808.DescribeMultiContainerGroupMetricRequest import (
    DescribeMultiContainerGroupMetricRequest,
)

from tests.integration.eci.conftest import Sdk
from vnode.clock import ManualClock, parse_rfc3339, rfc3339

GIB = 1024**3
STARTUP = 3  # the emulator's default Scheduling (1 s) + Pending (2 s)


async def create(sdk: Sdk, name: str, *, command: list[str] | None = None) -> str:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName(name)
    request.set_RestartPolicy("Never")
    request.set_Containers([{"Name": "main", "Image": "busybox", "Cpu": 1.0, "Memory": 2.0,
                             **({"Commands": command} if command else {})}])
    group_id: str = (await sdk.call(request))["ContainerGroupId"]
    return group_id


async def latest(sdk: Sdk, *group_ids: str) -> dict[str, list[dict[str, Any]]]:
    request = DescribeMultiContainerGroupMetricRequest()
    request.set_ContainerGroupIds(json.dumps(list(group_ids)))
    answer = await sdk.call(request)
    return {item["ContainerGroupId"]: item["Records"] for item in answer["MonitorDatas"]}


async def window(sdk: Sdk, group_id: str, start: datetime, end: datetime, period: int) -> list[dict[str, Any]]:
    request = DescribeContainerGroupMetricRequest()
    request.set_ContainerGroupId(group_id)
    request.set_StartTime(rfc3339(start))
    request.set_EndTime(rfc3339(end))
    request.set_Period(str(period))
    records: list[dict[str, Any]] = (await sdk.call(request))["Records"]
    return records


async def test_running_group_reports_its_sizes(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, "build-1")
    await clock.advance(STARTUP + 60)
    [record] = (await latest(sdk, group_id))[group_id]
    assert record["CPU"]["Limit"] == 1000  # vCPUs × 1000
    container = record["Containers"][0]
    assert container["Name"] == "main" and container["Memory"]["WorkingSet"] == GIB  # half of 2 GiB
    assert container["Memory"]["AvailableBytes"] + container["Memory"]["WorkingSet"] == 2 * GIB
    assert container["CPU"]["UsageNanoCores"] == 250_000_000  # a quarter of its vCPU


async def test_cpu_time_grows_while_running(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, "build-1")
    await clock.advance(STARTUP + 60)
    [before] = (await latest(sdk, group_id))[group_id]
    await clock.advance(30)
    [after] = (await latest(sdk, group_id))[group_id]
    assert parse_rfc3339(after["Timestamp"]) - parse_rfc3339(before["Timestamp"]) == timedelta(seconds=30)
    grown = after["CPU"]["UsageCoreNanoSeconds"] - before["CPU"]["UsageCoreNanoSeconds"]
    assert grown == pytest.approx(0.25 * 30 * 1e9, abs=2)


async def test_group_not_yet_running_has_no_records(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, "build-1")
    await clock.advance(STARTUP - 0.5)  # Pending: image still pulling
    assert await latest(sdk, group_id) == {group_id: []}


async def test_records_start_when_the_group_runs(sdk: Sdk, clock: ManualClock) -> None:
    created = clock.now()
    group_id = await create(sdk, "build-1")
    await clock.advance(STARTUP + 120)
    records = await window(sdk, group_id, created - timedelta(minutes=1), clock.now(), 15)
    times = [parse_rfc3339(r["Timestamp"]) for r in records]
    running = created + timedelta(seconds=STARTUP)
    assert times and min(times) >= running and max(times) <= clock.now()
    assert all(t.timestamp() % 15 == 0 for t in times)  # on the Period grid
    assert len(times) in (8, 9)  # every 15 s of the 120 s it has run


async def test_finished_group_gets_no_new_records(sdk: Sdk, clock: ManualClock) -> None:
    created = clock.now()
    group_id = await create(sdk, "build-1", command=["sleep", "30"])
    await clock.advance(STARTUP + 120)
    records = await window(sdk, group_id, created, clock.now(), 15)
    ended = created + timedelta(seconds=STARTUP + 30)
    assert records and all(parse_rfc3339(r["Timestamp"]) < ended for r in records)


async def test_unknown_group_is_not_found(sdk: Sdk) -> None:
    request = DescribeContainerGroupMetricRequest()
    request.set_ContainerGroupId("eci-unknown")
    with pytest.raises(ServerException) as caught:
        await sdk.call(request)
    assert caught.value.get_http_status() == 404


async def test_period_must_be_one_ecis_offers(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, "build-1")
    with pytest.raises(ServerException) as caught:
        await window(sdk, group_id, clock.now() - timedelta(minutes=5), clock.now(), 45)
    assert caught.value.get_error_code() == "InvalidParameter"
