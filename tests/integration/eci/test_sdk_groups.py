"""Every CreateContainerGroup parameter family, RestartContainerGroup, UpdateContainerGroup and spot release, through
the real aliyun-python-sdk-eci against the emulator (sim runtime)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.CreateContainerGroupRequest import CreateContainerGroupRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupEventsRequest import DescribeContainerGroupEventsRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupsRequest import DescribeContainerGroupsRequest
from aliyunsdkeci.request.v20180808.RestartContainerGroupRequest import RestartContainerGroupRequest
from aliyunsdkeci.request.v20180808.UpdateContainerGroupRequest import UpdateContainerGroupRequest

from tests.integration.eci.conftest import Sdk
from vnode.clock import ManualClock
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.server import EciEmulator

CONFIG = base64.b64encode(b"greeting: hello\n").decode()


def full_request() -> CreateContainerGroupRequest:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName("full-1")
    request.set_RestartPolicy("OnFailure")
    request.set_Cpu(2.0)
    request.set_Memory(4.0)
    request.set_ZoneId("cn-hangzhou-i")
    request.set_VSwitchId("vsw-a,vsw-b")
    request.set_SecurityGroupId("sg-1")
    request.set_SpotStrategy("SpotWithPriceLimit")
    request.set_SpotPriceLimit(0.25)
    request.set_SpotDuration(1)
    request.set_AutoMatchImageCache(True)
    request.set_ImageSnapshotId("imc-1")
    request.set_ImageRegistryCredentials([{"Server": "registry.example.com", "UserName": "u", "Password": "p"}])
    request.set_DnsPolicy("None")
    request.set_DnsConfigNameServers(["10.0.0.10"])
    request.set_DnsConfigSearchs(["svc.cluster.local"])
    request.set_DnsConfigOptions([{"Name": "ndots", "Value": "2"}])
    request.set_HostAliases([{"Ip": "10.0.0.5", "Hostnames": ["db", "db.local"]}])
    request.set_TerminationGracePeriodSeconds(15)
    request.set_ActiveDeadlineSeconds(3600)
    request.set_EphemeralStorage(30)
    request.set_RamRoleName("builder")
    request.set_Tags([{"Key": "vnode.io/pod", "Value": "full-1"}])
    request.set_AutoCreateEip(True)
    request.set_ClientToken("full-1-token")
    request.set_SecurityContextSysctls([{"Name": "net.core.somaxconn", "Value": "1024"}])
    request.set_Volumes([
        {"Name": "work", "Type": "EmptyDirVolume", "EmptyDirVolume.Medium": "Memory"},
        {"Name": "nfs", "Type": "NFSVolume", "NFSVolume.Server": "nas.example.com", "NFSVolume.Path": "/share",
         "NFSVolume.ReadOnly": True},
        {"Name": "cfg", "Type": "ConfigFileVolume", "ConfigFileVolume.DefaultModel": "0644",
         "ConfigFileVolume.ConfigFileToPaths": [{"Path": "app.yaml", "Content": CONFIG}]},
        {"Name": "host", "Type": "HostPathVolume", "HostPathVolume.Path": "/var/log", "HostPathVolume.Type": ""},
        {"Name": "disk", "Type": "DiskVolume", "DiskVolume.DiskId": "d-1", "DiskVolume.FsType": "ext4",
         "DiskVolume.DiskSize": 20},
    ])
    request.set_Containers([{
        "Name": "main", "Image": "busybox", "Cpu": 1.0, "Memory": 2.0, "Gpu": 0, "WorkingDir": "/work",
        "ImagePullPolicy": "Always", "Commands": ["sh", "-c"], "Args": ["sleep 3600"], "Stdin": True,
        "StdinOnce": False, "Tty": True,
        "EnvironmentVars": [{"Key": "A", "Value": "1"}],
        "Ports": [{"Port": 8080, "Protocol": "TCP"}],
        "VolumeMounts": [{"Name": "work", "MountPath": "/work"},
                         {"Name": "cfg", "MountPath": "/etc/app", "ReadOnly": True, "SubPath": ""}],
        "ReadinessProbe.HttpGet.Path": "/ready", "ReadinessProbe.HttpGet.Port": 8080,
        "ReadinessProbe.HttpGet.Scheme": "HTTP", "ReadinessProbe.PeriodSeconds": 5,
        "LivenessProbe.TcpSocket.Port": 8080, "LivenessProbe.FailureThreshold": 4,
        "SecurityContext.RunAsUser": 1000, "SecurityContext.ReadOnlyRootFilesystem": False,
        "SecurityContext.Capability.Adds": ["NET_ADMIN"],
        "LifecyclePreStopHandlerExecs": ["sh", "-c", "sleep 1"],
        "LifecyclePostStartHandlerTcpSocketPort": 8080,
    }])
    request.set_InitContainers([{"Name": "setup", "Image": "busybox", "Commands": ["true"],
                                 "VolumeMounts": [{"Name": "work", "MountPath": "/work"}]}])
    # API-only fields the SDK has no setter for.
    request.add_query_param("Container.1.EnvironmentVar.2.Key", "POD_IP")
    request.add_query_param("Container.1.EnvironmentVar.2.FieldRef.FieldPath", "status.podIP")
    request.add_query_param("Container.1.StartupProbe.Exec.Command.1", "true")
    request.add_query_param("Container.1.TerminationMessagePath", "/dev/termination-log")
    request.add_query_param("Container.1.TerminationMessagePolicy", "File")
    request.add_query_param("Volume.1.EmptyDirVolume.SizeLimit", "1Gi")
    return request


def simple_request(name: str, *, spot: str = "NoSpot", env: dict[str, str] | None = None,
                   restart: str = "Never") -> CreateContainerGroupRequest:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName(name)
    request.set_RestartPolicy(restart)
    request.set_SpotStrategy(spot)
    request.set_Containers([{"Name": "main", "Image": "busybox",
                             "EnvironmentVars": [{"Key": k, "Value": v} for k, v in (env or {}).items()]}])
    return request


async def describe(sdk: Sdk, group_id: str) -> dict[str, Any]:
    request = DescribeContainerGroupsRequest()
    request.set_ContainerGroupIds(json.dumps([group_id]))
    groups: list[dict[str, Any]] = (await sdk.call(request))["ContainerGroups"]
    return groups[0]


async def create(sdk: Sdk, request: CreateContainerGroupRequest) -> str:
    group_id: str = (await sdk.call(request))["ContainerGroupId"]
    return group_id


async def test_every_parameter_family_is_accepted_and_echoed(sdk: Sdk, emulator: EciEmulator) -> None:
    group = await describe(sdk, await create(sdk, full_request()))
    assert {k: group[k] for k in ("Cpu", "Memory", "ZoneId", "VSwitchId", "SecurityGroupId", "SpotStrategy",
                                  "SpotPriceLimit", "RestartPolicy", "RamRoleName", "EphemeralStorage")} == {
        "Cpu": 2.0, "Memory": 4.0, "ZoneId": "cn-hangzhou-i", "VSwitchId": "vsw-a", "SecurityGroupId": "sg-1",
        "SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": 0.25, "RestartPolicy": "OnFailure",
        "RamRoleName": "builder", "EphemeralStorage": 30}
    assert [(v["Name"], v["Type"]) for v in group["Volumes"]] == [
        ("work", "EmptyDirVolume"), ("nfs", "NFSVolume"), ("cfg", "ConfigFileVolume"), ("host", "HostPathVolume"),
        ("disk", "DiskVolume")]
    assert group["Volumes"][2]["ConfigFileVolumeConfigFileToPaths"] == [{"Path": "app.yaml", "Content": CONFIG}]
    assert group["DnsConfig"] == {"NameServers": ["10.0.0.10"], "Searches": ["svc.cluster.local"],
                                  "Options": [{"Name": "ndots", "Value": "2"}]}
    assert group["HostAliases"] == [{"Ip": "10.0.0.5", "Hostnames": ["db", "db.local"]}]
    main = group["Containers"][0]
    assert main["EnvironmentVars"][1] == {"Key": "POD_IP", "Value": "",
                                          "ValueFrom": {"FieldRef": {"FieldPath": "status.podIP"}}}
    assert main["ReadinessProbe"]["HttpGet"] == {"Path": "/ready", "Port": 8080, "Scheme": "HTTP"}
    assert main["LivenessProbe"]["TcpSocket"] == {"Port": 8080}
    assert [m["MountPath"] for m in main["VolumeMounts"]] == ["/work", "/etc/app"]
    assert main["SecurityContext"]["Capability"] == {"Adds": ["NET_ADMIN"]}
    assert group["InitContainers"][0]["Command"] == ["true"]
    # The registry password crossed the wire but is neither echoed nor logged.
    assert "Password" not in json.dumps(group)
    assert not any(k.endswith("Password") for k in emulator.calls("CreateContainerGroup")[0].params)


async def test_restart_goes_restarting_then_counts_one_restart(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, simple_request("r-1"))
    await clock.advance(3)
    request = RestartContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    await sdk.call(request)
    assert (await describe(sdk, group_id))["Status"] == "Restarting"
    await clock.advance(2)
    group = await describe(sdk, group_id)
    assert (group["Status"], group["Containers"][0]["RestartCount"]) == ("Running", 1)


async def test_restart_retried_with_its_client_token_restarts_once(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, simple_request("r-1"))
    await clock.advance(3)
    for _ in range(2):
        request = RestartContainerGroupRequest()
        request.set_ContainerGroupId(group_id)
        request.set_ClientToken("restart-1")
        await sdk.call(request)
    await clock.advance(2)
    assert (await describe(sdk, group_id))["Containers"][0]["RestartCount"] == 1


async def test_restarting_a_finished_group_is_incorrect_status(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, simple_request("r-1", env={"VNODE_SIM_RUN_SECONDS": "1"}))
    await clock.advance(5)
    request = RestartContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    with pytest.raises(ServerException) as caught:
        await sdk.call(request)
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("IncorrectStatus", 400)


async def test_update_image_goes_updating_then_runs_it(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, simple_request("u-1"))
    await clock.advance(3)
    request = UpdateContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    request.set_Containers([{"Name": "main", "Image": "alpine:3.20"}])
    request.set_RestartPolicy("Always")
    await sdk.call(request)
    assert (await describe(sdk, group_id))["Status"] == "Updating"
    await clock.advance(2)
    group = await describe(sdk, group_id)
    assert (group["Status"], group["RestartPolicy"], group["Containers"][0]["Image"]) == ("Running", "Always",
                                                                                          "alpine:3.20")


async def test_update_of_tags_only_restarts_nothing(sdk: Sdk, clock: ManualClock) -> None:
    group_id = await create(sdk, simple_request("u-1"))
    await clock.advance(3)
    request = UpdateContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    request.set_Tags([{"Key": "team", "Value": "ci"}])
    await sdk.call(request)
    group = await describe(sdk, group_id)
    assert (group["Status"], group["Tags"]) == ("Running", [{"Key": "team", "Value": "ci"}])


async def test_spot_release_warns_then_fails_the_group(sdk: Sdk, emulator: EciEmulator, clock: ManualClock) -> None:
    group_id = await create(sdk, simple_request("s-1", spot="SpotAsPriceGo"))
    await clock.advance(3)
    emulator.release_spot(group_id, 120)
    events = DescribeContainerGroupEventsRequest()
    events.set_ContainerGroupIds(json.dumps([group_id]))
    warned = (await sdk.call(events))["Data"][0]["Events"][-1]
    await clock.advance(120)
    group = await describe(sdk, group_id)
    assert (warned["Type"], warned["Reason"], warned["Message"]) == ("Warning", "SpotToBeReleased",
                                                                    "Spot ECI will be released in 2 minutes")
    assert group["Status"] == "Failed" and group["Events"][-1]["Reason"] == "SpotReleased"
    assert group["Containers"][0]["CurrentState"]["State"] == "Terminated"


async def test_only_spot_groups_can_be_released(sdk: Sdk, emulator: EciEmulator) -> None:
    group_id = await create(sdk, simple_request("s-1"))
    with pytest.raises(EciApiError, match="not a spot instance"):
        emulator.release_spot(group_id, 120)
