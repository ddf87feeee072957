"""Exec from the clients users really have: the python `kubernetes` client, kubernetes_asyncio, and a client that
speaks exactly what the Jenkins kubernetes-plugin (fabric8) sends for a `container('x') { sh ... }` step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import kubernetes
import pytest
from kubernetes.stream import stream
from kubernetes_asyncio import client as aclient
from kubernetes_asyncio import config as aconfig
from kubernetes_asyncio.stream import WsApiClient

from tests.support.agent import agent_settings, running_agent
from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.sandbox import running_sandbox
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.providers.base import PodRef
from vnode.providers.mock import MockProvider
from vnode.providers.streams import StreamIO

# What fabric8 sends for `container('build') { sh ... }`: bare `sh`, stdin/stdout/stderr, no tty.
JENKINS_EXEC = ("/api/v1/namespaces/default/pods/agent/exec?command=sh&container=build&stdin=true&stdout=true"
                "&stderr=true")


def python_client_exec(kubeconfig: Path, command: list[str]) -> tuple[int | None, str]:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as api_client:
        api = kubernetes.client.CoreV1Api(api_client)
        session = stream(api.connect_get_namespaced_pod_exec, "box", "default", command=command, stderr=True,
                         stdin=False, stdout=True, tty=False, _preload_content=False)
        session.run_forever(timeout=WAIT)
        output = session.read_stdout()
        session.close()
        # After the server's close frame the client skips its own socket close (websocket-client considers the
        # connection gone); release the socket here instead of leaving it to the garbage collector.
        session.sock.shutdown()
        return session.returncode, output


async def test_python_kubernetes_client_stream(world: KubeletWorld) -> None:
    await world.create_pod("box")
    code, output = await asyncio.to_thread(python_client_exec, world.sandbox.kubeconfig,
                                           ["sh", "-c", "echo from python; exit 5"])
    assert output == "from python\n"
    assert code == 5


async def test_kubernetes_asyncio_websocket_client(world: KubeletWorld) -> None:
    await world.create_pod("box")
    configuration = aclient.Configuration()
    await aconfig.load_kube_config(config_file=str(world.sandbox.kubeconfig), client_configuration=configuration)
    async with WsApiClient(configuration=configuration) as ws_api:
        api = aclient.CoreV1Api(api_client=ws_api)
        output = await api.connect_get_namespaced_pod_exec("box", "default", command=["sh", "-c", "echo v4 works"],
                                                           stderr=True, stdin=False, stdout=True, tty=False)
    assert output == "v4 works\n"


def jenkins_agent_pod() -> list[dict[str, object]]:
    return [{"name": "jnlp", "image": "jenkins/inbound-agent"},
            {"name": "build", "image": "busybox", "command": ["cat"], "tty": True, "stdin": True}]


async def jenkins_session(world: KubeletWorld, lines: list[str], *, heartbeat: float | None = None,
                          ) -> tuple[list[tuple[int, bytes]], int | None]:
    """Open the exec WebSocket as fabric8 does, write `lines` on stdin (never half-closed), and collect the server's
    messages until it closes; returns them as (channel, payload) and the close code."""
    received: list[tuple[int, bytes]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
            world.sandbox.url + JENKINS_EXEC, protocols=("v4.channel.k8s.io",), ssl=world.admin_ssl(),
            heartbeat=heartbeat) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        for line in lines:
            await ws.send_bytes(b"\x00" + line.encode() + b"\n")
        async with asyncio.timeout(WAIT):
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.BINARY, message
                received.append((message.data[0], message.data[1:]))
        return received, ws.close_code


async def test_jenkins_container_step(world: KubeletWorld) -> None:
    await world.create_pod("agent", containers=jenkins_agent_pod())
    workspace = world.tmp / "workspace"  # an absolute path, as Jenkins sends its workspace
    workspace.mkdir()
    wrapper = ("(echo \"building $BUILD_NUMBER\" > jenkins-log.txt; echo 0 > jenkins-result.txt.tmp; "
               "mv jenkins-result.txt.tmp jenkins-result.txt)")
    received, close_code = await jenkins_session(world, [
        f'cd "{workspace}"', "export BUILD_NUMBER='7'", "export JOB_NAME='it'",
        f'nohup sh -c "{wrapper.replace(chr(34), chr(92) + chr(34))} >&- 2>&- &"', "exit"])
    statuses = [json.loads(payload) for channel, payload in received if channel == 3]
    assert statuses == [{"metadata": {}, "status": "Success"}]
    assert received[-1][0] == 3  # the Status is the last message before the close
    assert close_code == 1000

    async def result_written() -> bool:
        return (workspace / "jenkins-result.txt").exists()
    await eventually(result_written, timeout_seconds=WAIT, what="jenkins-result.txt")
    assert (workspace / "jenkins-result.txt").read_text() == "0\n"
    assert (workspace / "jenkins-log.txt").read_text() == "building 7\n"


async def test_jenkins_exit_code_and_keepalive(world: KubeletWorld) -> None:
    """Pings (aiohttp's heartbeat closes the socket when a pong is missing) are answered while a command runs;
    a newline on stdin is harmless; a failing command's code arrives as NonZeroExitCode."""
    await world.create_pod("agent", containers=jenkins_agent_pod())
    received, close_code = await jenkins_session(world, ["", "sleep 0.5", "", "exit 6"], heartbeat=0.05)
    statuses = [json.loads(payload) for channel, payload in received if channel == 3]
    assert len(statuses) == 1
    assert statuses[0]["reason"] == "NonZeroExitCode"
    assert statuses[0]["details"]["causes"] == [{"reason": "ExitCode", "message": "6"}]
    assert close_code == 1000


class SlowExecMock(MockProvider):
    """A backend whose exec takes long to set up (as ECI's may): it waits until the test releases it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.release = asyncio.Event()
        self.exec_started = asyncio.Event()

    async def exec(self, ref: PodRef, container: str, command: object, io: StreamIO) -> int:
        self.exec_started.set()
        await self.release.wait()
        return await super().exec(ref, container, command, io)  # type: ignore[arg-type]


@pytest.fixture
async def slow_world(tmp_path: Path) -> AsyncIterator[KubeletWorld]:
    async with running_sandbox(tmp_path / "sandbox") as sandbox:
        mock = SlowExecMock(agent_settings(sandbox).provider, SystemClock())
        async with running_agent(sandbox, mock_provider=mock) as agent:
            yield KubeletWorld(sandbox, agent, tmp_path)


async def test_upgrade_is_answered_before_a_slow_backend_exec(slow_world: KubeletWorld) -> None:
    world = slow_world
    mock = world.mock
    assert isinstance(mock, SlowExecMock)
    await world.create_pod("agent", containers=jenkins_agent_pod())
    async with aiohttp.ClientSession() as http, http.ws_connect(
            world.sandbox.url + JENKINS_EXEC, protocols=("v4.channel.k8s.io",), ssl=world.admin_ssl()) as ws:
        # The 101 came back while the backend's exec is still being set up.
        await asyncio.wait_for(mock.exec_started.wait(), WAIT)
        assert not mock.release.is_set()
        await ws.send_bytes(b"\x00echo late\nexit\n")
        mock.release.set()
        out = b""
        async with asyncio.timeout(WAIT):
            async for message in ws:
                if message.data[0] == 1:
                    out += message.data[1:]
        assert out == b"late\n"
