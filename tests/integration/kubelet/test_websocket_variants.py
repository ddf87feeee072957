"""Every WebSocket remote-command variant vnode declares it serves (ExtendWebSocketsToKubelet), through the sandbox
API server, which passes WebSocket upgrades straight to the kubelet as kube-apiserver 1.36 does for such nodes.
Also WebSocket port-forward (python `kubernetes` client) and teardown when the client disconnects."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from urllib.parse import quote

import aiohttp
import kubernetes
import pytest
from kubernetes.stream import portforward

from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.wait import eventually

EXEC = "/api/v1/namespaces/default/pods/box/exec?container=main&stdin=true&stdout=true&stderr=true"


def command_query(*command: str) -> str:
    return "".join(f"&command={quote(part, safe='')}" for part in command)


def encode(protocol: str, channel: int, payload: bytes) -> str | bytes:
    if "base64" in protocol:
        return chr(ord("0") + channel) + base64.b64encode(payload).decode()
    return bytes([channel]) + payload


def decode(protocol: str, message: aiohttp.WSMessage) -> tuple[int, bytes]:
    if "base64" in protocol:
        text: str = message.data
        return ord(text[0]) - ord("0"), base64.b64decode(text[1:])
    data: bytes = message.data
    return data[0], data[1:]


async def run_exec(world: KubeletWorld, protocol: str, script: str,
                   stdin: bytes) -> tuple[dict[int, bytes], int | None, str | None]:
    """Exec `sh -c script` offering only `protocol` ("" offers none); returns output by channel, close code and the
    subprotocol the server chose."""
    url = world.sandbox.url + EXEC + command_query("sh", "-c", script)
    channels: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as http, http.ws_connect(
            url, protocols=(protocol,) if protocol else (), ssl=world.admin_ssl()) as ws:
        message = encode(protocol, 0, stdin)
        if isinstance(message, str):
            await ws.send_str(message)
        else:
            await ws.send_bytes(message)
        if protocol.startswith("v5."):
            await ws.send_bytes(bytes([255, 0]))  # v5: half-close stdin
        async with asyncio.timeout(WAIT):
            async for message in ws:
                channel, payload = decode(protocol, message)
                channels[channel] = channels.get(channel, b"") + payload
        return channels, ws.close_code, ws.protocol


JSON_STATUS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"]
TEXT_STATUS = ["channel.k8s.io", "base64.channel.k8s.io", ""]


@pytest.mark.parametrize("protocol", JSON_STATUS + TEXT_STATUS)
async def test_success_carries_output_and_ends_cleanly(world: KubeletWorld, protocol: str) -> None:
    await world.create_pod("box")
    channels, close_code, chosen = await run_exec(world, protocol, "read line; echo got $line; echo oops >&2",
                                                  b"hello\n")
    assert (chosen or "") == protocol
    assert channels[1] == b"got hello\n"
    assert channels[2] == b"oops\n"
    if protocol in JSON_STATUS:
        assert json.loads(channels[3]) == {"metadata": {}, "status": "Success"}
    else:
        assert channels.get(3, b"") == b""  # v1 protocols write the error channel only on failure
    assert close_code == 1000


@pytest.mark.parametrize("protocol", JSON_STATUS + TEXT_STATUS)
async def test_exit_code_reaches_the_client(world: KubeletWorld, protocol: str) -> None:
    await world.create_pod("box")
    channels, _, _ = await run_exec(world, protocol, "exit 7", b"")
    if protocol in JSON_STATUS:
        status = json.loads(channels[3])
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]
    else:
        assert channels[3].decode().endswith("exit code: 7")


def python_port_forward(kubeconfig: Path, payload: bytes) -> bytes:
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with kubernetes.client.ApiClient(configuration) as api_client:
        api = kubernetes.client.CoreV1Api(api_client)
        forward = portforward(api.connect_get_namespaced_pod_portforward, "box", "default", ports="8080")
        sock = forward.socket(8080)
        sock.settimeout(WAIT)
        sock.sendall(payload)
        received = b""
        # v4 WebSocket port-forward cannot half-close: read the echo back by length.
        while len(received) < len(payload) and (chunk := sock.recv(65536)):
            received += chunk
        sock.close()
        forward.close()
        return received


async def test_websocket_port_forward_echo(world: KubeletWorld) -> None:
    """The python client speaks the v4 WebSocket port-forward protocol (channel pairs, port-number prefix)."""
    await world.create_pod("box")
    payload = b"through the websocket\n" * 5000
    assert await asyncio.to_thread(python_port_forward, world.sandbox.kubeconfig, payload) == payload


async def test_client_disconnect_cancels_the_providers_exec(world: KubeletWorld) -> None:
    await world.create_pod("box")
    pid_file = world.tmp / "exec.pid"
    url = world.sandbox.url + EXEC + command_query("sh", "-c", f"echo $$ > {pid_file}; exec sleep 600")
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=("v4.channel.k8s.io",),
                                                                ssl=world.admin_ssl()):
        async def pid_written() -> bool:
            return pid_file.exists() and pid_file.read_text().strip() != ""
        await eventually(pid_written, timeout_seconds=WAIT, what="the exec'd command to start")
        pid = int(pid_file.read_text())
        assert process_alive(pid)
    # The client is gone: the session ends and the provider's command with it.

    async def ended() -> bool:
        return not process_alive(pid)
    await eventually(ended, timeout_seconds=WAIT, what=f"exec'd process {pid} to end")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status != "Z"  # a zombie has ended and only waits to be reaped
