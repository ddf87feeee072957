"""The emulator's docker runtime on the test engine, driven through the real SDK: groups run as containers, reach
their outcome, serve logs and exec, restart, and leave nothing behind when deleted or when the emulator stops."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from aliyunsdkeci.request.v20180808.CreateContainerGroupRequest import CreateContainerGroupRequest
from aliyunsdkeci.request.v20180808.DeleteContainerGroupRequest import DeleteContainerGroupRequest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupsRequest import DescribeContainerGroupsRequest
from aliyunsdkeci.request.v20180808.RestartContainerGroupRequest import RestartContainerGroupRequest
from aliyunsdkeci.request.v20180808.UpdateContainerGroupRequest import UpdateContainerGroupRequest

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, Sdk
from tests.support.docker_world import docker_provider_settings, remove_node_containers, tools_image
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.config import DockerProviderSettings, EciEmulatorSettings
from vnode.providers.docker import naming
from vnode.providers.streams import LogOptions, ResizeQueue, StreamIO
from vnode.sandbox.eci.server import EciEmulator

WAIT_SECONDS = 60.0


def pause_image() -> str:
    return os.environ.get("VNODE_TEST_PAUSE_IMAGE", "vnode-test/pause:1")


class Collected:
    """A ByteSink keeping what it was given."""

    def __init__(self) -> None:
        self.data = b""

    async def write(self, data: bytes) -> None:
        self.data += data


class World:
    def __init__(self, emulator: EciEmulator, sdk: Sdk, node: str, docker: aiodocker.Docker) -> None:
        self.emulator, self.sdk, self.node, self.docker = emulator, sdk, node, docker

    async def create(self, name: str, containers: list[dict[str, Any]], *, volumes: list[dict[str, Any]] | None = None,
                     restart: str = "Never") -> str:
        request = CreateContainerGroupRequest()
        request.set_ContainerGroupName(name)
        request.set_RestartPolicy(restart)
        request.set_TerminationGracePeriodSeconds(0)
        request.set_Containers([{"Image": tools_image(), "ImagePullPolicy": "IfNotPresent", **c}
                                for c in containers])
        if volumes:
            request.set_Volumes(volumes)
        group_id: str = (await self.sdk.call(request))["ContainerGroupId"]
        return group_id

    async def describe(self, group_id: str) -> dict[str, Any]:
        request = DescribeContainerGroupsRequest()
        request.set_ContainerGroupIds(json.dumps([group_id]))
        groups: list[dict[str, Any]] = (await self.sdk.call(request))["ContainerGroups"]
        return groups[0]

    async def until(self, group_id: str, *statuses: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            group = await self.describe(group_id)
            return group if group["Status"] in statuses else None
        return await eventually(probe, timeout_seconds=WAIT_SECONDS, what=f"{group_id} {statuses}")

    async def containers(self) -> list[Any]:
        return list(await self.docker.containers.list(all=True, filters=naming.node_filter(self.node)))


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
async def world(tmp_path: Path, no_proxy: None) -> AsyncIterator[World]:
    docker = DockerProviderSettings(**docker_provider_settings(tmp_path))
    node = f"test-{uuid.uuid4().hex[:8]}"
    settings = EciEmulatorSettings(port=0, access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET,
                                   region_id=REGION, runtime="docker", docker=docker, docker_node_name=node)
    emulator = EciEmulator(settings, SystemClock())
    task = asyncio.create_task(emulator.run(), name="eci emulator (docker)")
    try:
        await eventually(lambda: _ready(emulator, task), timeout_seconds=WAIT_SECONDS, what="emulator ready")
        async with aiodocker.Docker(url=docker.host) as client:
            with Sdk(emulator.endpoint) as sdk:
                yield World(emulator, sdk, node, client)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await remove_node_containers(docker.host, node)


async def _ready(emulator: EciEmulator, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
    return emulator.ready.is_set()


def io(stdout: Collected) -> StreamIO:
    return StreamIO(stdin=None, stdout=stdout, stderr=None, tty=False, resizes=ResizeQueue())


async def test_two_containers_share_an_empty_dir_and_read_a_config_file(world: World) -> None:
    greeting = base64.b64encode(b"hello from a config file\n").decode()
    mounts = [{"Name": "work", "MountPath": "/work"}, {"Name": "cfg", "MountPath": "/cfg", "ReadOnly": True}]
    group_id = await world.create("shared", [
        {"Name": "writer", "Commands": ["sh", "-c", "cp /cfg/greeting.txt /work/out && echo wrote"],
         "VolumeMounts": mounts},
        {"Name": "reader", "Commands": ["sh", "-c", "while [ ! -f /work/out ]; do sleep 0.1; done; cat /work/out"],
         "VolumeMounts": mounts},
    ], volumes=[{"Name": "work", "Type": "EmptyDirVolume"},
                {"Name": "cfg", "Type": "ConfigFileVolume",
                 "ConfigFileVolume.ConfigFileToPaths": [{"Path": "greeting.txt", "Content": greeting}]}])
    group = await world.until(group_id, "Succeeded", "Failed")
    assert group["Status"] == "Succeeded"
    assert [(c["Name"], c["CurrentState"]["State"], c["CurrentState"]["ExitCode"]) for c in group["Containers"]] == [
        ("writer", "Terminated", 0), ("reader", "Terminated", 0)]
    store_group = world.emulator.store.get(group_id)
    log = await world.emulator.runtime.logs(store_group, "reader", LogOptions())
    assert log == b"hello from a config file\n"


async def test_a_non_zero_exit_fails_the_group_with_its_code(world: World) -> None:
    group_id = await world.create("fails", [{"Name": "main", "Commands": ["sh", "-c", "exit 3"]}])
    group = await world.until(group_id, "Succeeded", "Failed")
    assert (group["Status"], group["Containers"][0]["CurrentState"]["ExitCode"]) == ("Failed", 3)


async def test_exec_runs_in_the_running_container(world: World) -> None:
    group_id = await world.create("execs", [{"Name": "main", "Commands": ["sh", "-c", "echo ready; sleep 300"]}])
    await world.until(group_id, "Running")
    group = world.emulator.store.get(group_id)
    stdout = Collected()
    code = await world.emulator.runtime.exec(group, "main", ["sh", "-c", "echo $((6 * 7)); exit 4"], io(stdout))
    assert (code, stdout.data) == (4, b"42\n")


async def test_delete_removes_every_container_of_the_group(world: World) -> None:
    group_id = await world.create("deleted", [{"Name": "a", "Commands": ["sleep", "300"]},
                                              {"Name": "b", "Commands": ["sleep", "300"]}])
    await world.until(group_id, "Running")
    assert len(await world.containers()) == 3  # the sandbox and two containers
    request = DeleteContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    await world.sdk.call(request)

    async def gone() -> bool:
        return not await world.containers()
    await eventually(gone, timeout_seconds=WAIT_SECONDS, what="the group's containers removed")


async def test_restart_runs_the_containers_again_with_one_more_restart(world: World) -> None:
    group_id = await world.create("restarted", [{"Name": "main", "Commands": ["sleep", "300"]}])
    await world.until(group_id, "Running")
    request = RestartContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    await world.sdk.call(request)
    assert (await world.describe(group_id))["Status"] == "Restarting"
    group = await world.until(group_id, "Running")
    assert group["Containers"][0]["RestartCount"] == 1


async def test_update_runs_the_new_image_after_updating(world: World) -> None:
    group_id = await world.create("updated", [{"Name": "main", "Commands": ["sleep", "300"]}])
    await world.until(group_id, "Running")
    request = UpdateContainerGroupRequest()
    request.set_ContainerGroupId(group_id)
    request.set_Containers([{"Name": "main", "Image": pause_image()}])
    await world.sdk.call(request)
    assert (await world.describe(group_id))["Status"] == "Updating"
    group = await world.until(group_id, "Running")
    assert group["Containers"][0]["Image"] == pause_image()

    async def replaced() -> bool:
        images = [c["Image"] for c in await world.containers() if c["Labels"][naming.LABEL_ROLE] == "app"]
        return images == [pause_image()]
    await eventually(replaced, timeout_seconds=WAIT_SECONDS, what="the old run's container removed")


async def test_spot_release_fails_the_group_and_removes_its_containers(world: World) -> None:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName("spot")
    request.set_SpotStrategy("SpotAsPriceGo")
    request.set_TerminationGracePeriodSeconds(0)
    request.set_Containers([{"Name": "main", "Image": tools_image(), "Commands": ["sleep", "300"]}])
    group_id = (await world.sdk.call(request))["ContainerGroupId"]
    await world.until(group_id, "Running")
    world.emulator.release_spot(group_id, 0.2)
    group = await world.until(group_id, "Failed")
    assert [e["Reason"] for e in group["Events"]][-2:] == ["SpotToBeReleased", "SpotReleased"]
    assert group["Containers"][0]["CurrentState"]["Reason"] == "SpotReleased"

    async def gone() -> bool:
        return not await world.containers()
    await eventually(gone, timeout_seconds=WAIT_SECONDS, what="the reclaimed instance's containers removed")


async def test_an_nfs_volume_fails_the_group_with_an_event(world: World) -> None:
    group_id = await world.create("nfs", [{"Name": "main", "Commands": ["true"]}],
                                  volumes=[{"Name": "share", "Type": "NFSVolume", "NFSVolume.Server": "nas",
                                            "NFSVolume.Path": "/"}])
    group = await world.until(group_id, "Failed")
    assert group["Events"][-1]["Reason"] == "FailedMount" and "NFSVolume" in group["Events"][-1]["Message"]
    assert not await world.containers()


async def test_stopping_the_emulator_removes_its_containers(tmp_path: Path, no_proxy: None) -> None:
    docker = DockerProviderSettings(**docker_provider_settings(tmp_path))
    node = f"test-{uuid.uuid4().hex[:8]}"
    settings = EciEmulatorSettings(port=0, access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET,
                                   region_id=REGION, runtime="docker", docker=docker, docker_node_name=node)
    emulator = EciEmulator(settings, SystemClock())
    task = asyncio.create_task(emulator.run(), name="eci emulator (docker)")
    try:
        await eventually(lambda: _ready(emulator, task), timeout_seconds=WAIT_SECONDS, what="emulator ready")
        async with aiodocker.Docker(url=docker.host) as client:
            with Sdk(emulator.endpoint) as sdk:
                running = World(emulator, sdk, node, client)
                group_id = await running.create("left", [{"Name": "main", "Commands": ["sleep", "300"]}])
                await running.until(group_id, "Running")
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                assert not await running.containers()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await remove_node_containers(docker.host, node)

