"""The operator API under /_emulator/ end to end: faults injected over HTTP, observed through the real SDK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.CreateContainerGroupRequest import CreateContainerGroupRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupsRequest import DescribeContainerGroupsRequest

from tests.integration.eci.conftest import Sdk
from tests.support.wait import eventually
from vnode.clock import ManualClock
from vnode.sandbox.eci.server import EciEmulator


class Operator:
    """An HTTP client of the emulator's /_emulator/ routes."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: str) -> None:
        self.session = session
        self.base = f"{endpoint}/_emulator"

    async def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else None
        async with self.session.request(method, f"{self.base}/{path}", json=body if raw is None else None,
                                        data=data) as response:
            return response.status, await response.json()

    async def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.send("POST", "faults", body)
        assert status == 201, answer
        fault: dict[str, Any] = answer["fault"]
        return fault

    async def faults(self) -> dict[str, Any]:
        status, answer = await self.send("GET", "faults")
        assert status == 200
        listing: dict[str, Any] = answer
        return listing


@pytest.fixture
async def operator(emulator: EciEmulator) -> AsyncIterator[Operator]:
    async with aiohttp.ClientSession() as session:
        yield Operator(session, emulator.endpoint)


def create_request(name: str, *, cpu: float | None = None, memory: float | None = None,
                   instance_type: str | None = None) -> CreateContainerGroupRequest:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName(name)
    request.set_Containers([{"Name": "main", "Image": "busybox"}])
    if cpu is not None and memory is not None:
        request.set_Cpu(cpu)
        request.set_Memory(memory)
    if instance_type is not None:
        request.set_InstanceType(instance_type)
    return request


async def error_code(sdk: Sdk, request: Any) -> tuple[str, int]:
    with pytest.raises(ServerException) as caught:
        await sdk.call(request)
    return caught.value.get_error_code(), caught.value.get_http_status()


async def test_error_fault_fails_the_next_calls_then_runs_out(sdk: Sdk, operator: Operator) -> None:
    fault = await operator.inject({"action": "DescribeContainerGroups", "code": "InternalError", "times": 2})
    assert (fault["kind"], fault["remaining"]) == ("error", 2)
    for _ in range(2):
        assert await error_code(sdk, DescribeContainerGroupsRequest()) == ("InternalError", 500)
    await sdk.call(DescribeContainerGroupsRequest())
    assert (await operator.faults())["faults"] == []


async def test_no_stock_refuses_one_shape_while_another_is_created(
        sdk: Sdk, operator: Operator, emulator: EciEmulator) -> None:
    await operator.inject({"no_stock": {"cpu": 2, "memory": 4}, "times": None})
    assert await error_code(sdk, create_request("build-1", cpu=2, memory=4)) == ("OperationDenied.NoStock", 403)
    await sdk.call(create_request("build-2", cpu=4, memory=8))
    assert [g.name for g in emulator.store.select()] == ["build-2"]
    assert [f["remaining"] for f in (await operator.faults())["faults"]] == [None]  # until cleared


async def test_no_stock_for_an_instance_type(sdk: Sdk, operator: Operator) -> None:
    await operator.inject({"no_stock": {"instance_type": "ecs.c6.xlarge"}})
    assert await error_code(sdk, create_request("build-1", instance_type="ecs.c6.xlarge")) == (
        "OperationDenied.NoStock", 403)
    await sdk.call(create_request("build-2", instance_type="ecs.g6.xlarge"))


async def test_clearing_faults_lets_the_shape_through_again(sdk: Sdk, operator: Operator) -> None:
    await operator.inject({"no_stock": {"cpu": 2, "memory": 4}})
    status, answer = await operator.send("DELETE", "faults")
    assert (status, answer) == (200, {"cleared": 1})
    await sdk.call(create_request("build-1", cpu=2, memory=4))


async def test_latency_holds_every_answer_until_the_clock_passes_it(
        sdk: Sdk, operator: Operator, clock: ManualClock) -> None:
    await operator.inject({"latency_seconds": 5, "action": "*"})
    call = asyncio.create_task(sdk.call(DescribeContainerGroupsRequest()))

    async def delayed() -> bool:
        return bool((await operator.faults())["delayed"] == 1)

    await eventually(delayed, what="the call to wait out its latency")
    asked = clock.monotonic()
    await clock.advance(4)
    assert (await operator.faults())["delayed"] == 1 and not call.done()
    await clock.advance(1)
    answer = await call
    assert "ContainerGroups" in answer and clock.monotonic() - asked >= 5


@pytest.mark.parametrize(("body", "complaint"), [
    ({"code": "InternalError"}, "action"),
    ({"action": "*", "code": "InternalError", "times": 0}, "times"),
    ({"latency_seconds": "2"}, "latency_seconds"),
    ({"no_stock": {}}, "no_stock"),
    ({"no_stock": {"cpu": 2, "gpu": 1}}, "gpu"),
    ({"action": "*", "code": "InternalError", "colour": "red"}, "colour"),
    ({"times": 3}, "code"),
    ([1, 2], "object"),
])
async def test_bad_fault_bodies_are_refused_with_a_reason(operator: Operator, body: Any, complaint: str) -> None:
    status, answer = await operator.send("POST", "faults", body)
    assert status == 400 and complaint in answer["error"]
    assert (await operator.faults())["faults"] == []


async def test_a_body_that_is_not_json_is_refused(operator: Operator) -> None:
    status, answer = await operator.send("POST", "faults", raw=b"{not json")
    assert status == 400 and "JSON" in answer["error"]


async def test_request_log_shows_calls_without_secrets(sdk: Sdk, operator: Operator) -> None:
    await sdk.call(create_request("build-1"))
    await sdk.call(DescribeContainerGroupsRequest())
    status, answer = await operator.send("GET", "requests?action=CreateContainerGroup")
    assert status == 200
    [record] = answer["requests"]
    assert (record["action"], record["http_status"], record["params"]["ContainerGroupName"]) == (
        "CreateContainerGroup", 200, "build-1")
    assert "Signature" not in record["params"]


async def test_request_log_stamps_each_call_with_its_arrival(sdk: Sdk, operator: Operator,
                                                             clock: ManualClock) -> None:
    await clock.advance(7)
    await sdk.call(DescribeContainerGroupsRequest())
    status, answer = await operator.send("GET", "requests")
    assert status == 200
    assert [record["at"] for record in answer["requests"]] == [7.0]


async def test_spot_release_warns_then_fails_the_group(sdk: Sdk, operator: Operator, clock: ManualClock) -> None:
    request = create_request("build-1")
    request.set_SpotStrategy("SpotAsPriceGo")
    group_id = (await sdk.call(request))["ContainerGroupId"]
    await clock.advance(3)  # Running
    status, answer = await operator.send("POST", "spot-release", {"group_id": group_id, "notice_seconds": 60})
    assert (status, answer) == (200, {"group_id": group_id, "notice_seconds": 60})
    describe = DescribeContainerGroupsRequest()
    describe.set_ContainerGroupIds(f'["{group_id}"]')
    [group] = (await sdk.call(describe))["ContainerGroups"]
    assert group["Status"] == "Running" and "SpotToBeReleased" in [e["Reason"] for e in group["Events"]]
    await clock.advance(60)
    [group] = (await sdk.call(describe))["ContainerGroups"]
    assert group["Status"] == "Failed"


async def test_spot_release_of_a_pay_as_you_go_group_is_refused(sdk: Sdk, operator: Operator) -> None:
    group_id = (await sdk.call(create_request("build-1")))["ContainerGroupId"]
    status, answer = await operator.send("POST", "spot-release", {"group_id": group_id})
    assert (status, answer["code"]) == (400, "InvalidParameter")
    status, answer = await operator.send("POST", "spot-release", {"group_id": "eci-unknown"})
    assert status == 404


async def test_after_apply_fault_loses_the_answer_of_an_applied_create(
        sdk: Sdk, operator: Operator, emulator: EciEmulator) -> None:
    await operator.inject({"action": "CreateContainerGroup", "code": "InternalError", "after_apply": True})
    request = create_request("build-1")
    request.set_ClientToken("pod-uid-1")
    assert await error_code(sdk, request) == ("InternalError", 500)
    assert [g.name for g in emulator.store.select()] == ["build-1"]  # it was created all the same
    retry = create_request("build-1")
    retry.set_ClientToken("pod-uid-1")
    group_id = (await sdk.call(retry))["ContainerGroupId"]
    assert [g.id for g in emulator.store.select()] == [group_id]
