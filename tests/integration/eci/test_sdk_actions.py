"""The emulator through the real aliyun-python-sdk-eci: what a provider built on the SDK will see."""

from __future__ import annotations

import json

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.CreateContainerGroupRequest import CreateContainerGroupRequest
from aliyunsdkeci.request.v20180808.DeleteContainerGroupRequest import DeleteContainerGroupRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupEventsRequest import DescribeContainerGroupEventsRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupsRequest import DescribeContainerGroupsRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupStatusRequest import DescribeContainerGroupStatusRequest

from tests.integration.eci.conftest import Sdk
from vnode.clock import ManualClock
from vnode.sandbox.eci.server import EciEmulator


def create_request(name: str, *, token: str | None = None, pod: str = "build-1") -> CreateContainerGroupRequest:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName(name)
    request.set_RestartPolicy("Never")
    request.set_Containers([{"Name": "main", "Image": "busybox", "Commands": ["sleep", "30"],
                             "EnvironmentVars": [{"Key": "GREETING", "Value": "hello world"}]}])
    request.set_Tags([{"Key": "vnode.io/node", "Value": "vnode"}, {"Key": "vnode.io/pod", "Value": pod}])
    if token:
        request.set_ClientToken(token)
    return request


def describe_by_tag(pod: str) -> DescribeContainerGroupsRequest:
    request = DescribeContainerGroupsRequest()
    request.set_Tags([{"Key": "vnode.io/pod", "Value": pod}])
    return request


async def test_create_twice_with_one_client_token_makes_one_group(sdk: Sdk, emulator: EciEmulator) -> None:
    first = await sdk.call(create_request("build-1", token="pod-uid-1"))
    again = await sdk.call(create_request("build-1", token="pod-uid-1"))
    assert first["ContainerGroupId"] == again["ContainerGroupId"]
    assert first["RequestId"] != again["RequestId"]
    assert len(emulator.store) == 1 and len(emulator.calls("CreateContainerGroup")) == 2


async def test_describe_by_tag_finds_only_that_pods_group(sdk: Sdk) -> None:
    wanted = (await sdk.call(create_request("build-1", pod="build-1")))["ContainerGroupId"]
    await sdk.call(create_request("build-2", pod="build-2"))
    answer = await sdk.call(describe_by_tag("build-1"))
    assert [g["ContainerGroupId"] for g in answer["ContainerGroups"]] == [wanted]
    container = answer["ContainerGroups"][0]["Containers"][0]
    assert container["EnvironmentVars"] == [{"Key": "GREETING", "Value": "hello world"}]


async def test_describe_by_ids_json_list(sdk: Sdk) -> None:
    group_id = (await sdk.call(create_request("build-1")))["ContainerGroupId"]
    request = DescribeContainerGroupsRequest()
    request.set_ContainerGroupIds(json.dumps([group_id, "eci-unknown"]))
    answer = await sdk.call(request)
    assert [g["ContainerGroupId"] for g in answer["ContainerGroups"]] == [group_id]


async def test_status_since_second_reports_recent_changes_only(sdk: Sdk, clock: ManualClock) -> None:
    old = (await sdk.call(create_request("build-1", pod="build-1")))["ContainerGroupId"]
    await clock.advance(3 + 120)  # old has been Running for 2 minutes
    fresh = (await sdk.call(create_request("build-2", pod="build-2")))["ContainerGroupId"]
    request = DescribeContainerGroupStatusRequest()  # POST, parameters in the query string
    request.set_SinceSecond(60)
    request.set_Tags([{"Key": "vnode.io/node", "Value": "vnode"}])
    answer = await sdk.call(request)
    assert [item["ContainerGroupId"] for item in answer["Data"]] == [fresh] and old != fresh
    assert answer["Data"][0]["Status"] == "Scheduling"


async def test_status_parameters_in_a_form_body_are_signed_and_read(sdk: Sdk, emulator: EciEmulator) -> None:
    await sdk.call(create_request("build-1"))
    request = DescribeContainerGroupStatusRequest()
    request.add_body_params("Limit", "1")
    answer = await sdk.call(request)
    assert len(answer["Data"]) == 1
    assert emulator.calls("DescribeContainerGroupStatus")[0].params["Limit"] == "1"


async def test_delete_twice_with_one_client_token_is_idempotent(sdk: Sdk, emulator: EciEmulator) -> None:
    group_id = (await sdk.call(create_request("build-1")))["ContainerGroupId"]
    for _ in range(2):
        request = DeleteContainerGroupRequest()
        request.set_ContainerGroupId(group_id)
        request.set_ClientToken("delete-pod-uid-1")
        assert "RequestId" in await sdk.call(request)
    assert len(emulator.store) == 0


async def test_deleting_an_unknown_group_is_a_404(sdk: Sdk) -> None:
    request = DeleteContainerGroupRequest()
    request.set_ContainerGroupId("eci-unknown")
    with pytest.raises(ServerException) as caught:
        await sdk.call(request)
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("InvalidContainerGroupId.NotFound",
                                                                               404)


async def test_wrong_secret_is_refused_as_signature_mismatch(emulator: EciEmulator) -> None:
    with pytest.raises(ServerException) as caught, Sdk(emulator.endpoint, secret="wrong") as wrong:
        await wrong.call(describe_by_tag("build-1"))
    # On the wire: SignatureDoesNotMatch with the server's string-to-sign. The SDK finds it equal to its own (so only
    # the secret can be wrong) and reports InvalidAccessKeySecret, exactly as it does against the real gateway.
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("InvalidAccessKeySecret", 400)
    assert emulator.calls("DescribeContainerGroups")[-1].code == "SignatureDoesNotMatch"


async def test_unknown_access_key_id_is_not_found(emulator: EciEmulator) -> None:
    with pytest.raises(ServerException) as caught, Sdk(emulator.endpoint, key_id="nobody") as nobody:
        await nobody.call(describe_by_tag("build-1"))
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("InvalidAccessKeyId.NotFound", 404)


async def test_throttling_once_the_bucket_is_empty(sdk: Sdk) -> None:
    for _ in range(2):  # the fixture's bucket for events: burst 2, practically no refill
        await sdk.call(DescribeContainerGroupEventsRequest())
    with pytest.raises(ServerException) as caught:
        await sdk.call(DescribeContainerGroupEventsRequest())
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("Throttling", 400)


async def test_injected_5xx_fails_once_then_calls_succeed(sdk: Sdk, emulator: EciEmulator) -> None:
    emulator.inject("CreateContainerGroup", "ServiceUnavailable", times=1)
    with pytest.raises(ServerException) as caught:
        await sdk.call(create_request("build-1", token="t"))
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("ServiceUnavailable", 503)
    assert caught.value.get_request_id()
    assert "ContainerGroupId" in await sdk.call(create_request("build-1", token="t"))
    assert len(emulator.store) == 1


async def test_request_log_keeps_parameters_but_not_the_signature(sdk: Sdk, emulator: EciEmulator) -> None:
    await sdk.call(create_request("build-1"))
    record = emulator.calls("CreateContainerGroup")[0]
    assert record.params["Container.1.Image"] == "busybox" and "Signature" not in record.params
