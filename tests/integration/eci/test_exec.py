"""ExecContainerCommand against the emulator: the action through the real SDK, its WebSocket on the wire, and
`EciExecBridge` running commands in the sim runtime (host processes with real exit codes, stdin and terminals)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.ExecContainerCommandRequest import ExecContainerCommandRequest

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, Sdk, eci_client
from tests.integration.eci.streams_support import running_group
from tests.support.eci_emulator import serving
from tests.support.wait import eventually
from tests.unit.providers.streamio_fakes import MemorySource, sink, stream_io
from vnode.clock import ManualClock
from vnode.config import EciEmulatorSettings
from vnode.errors import BackendUnavailable, NotFound
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.exec_bridge import EciExecBridge
from vnode.providers.eci.exec_frames import V1, V4, V5
from vnode.providers.streams import TerminalSize
from vnode.sandbox.eci.exec_ws import ExecSessionRecord
from vnode.sandbox.eci.server import EciEmulator


@pytest.fixture
async def group_id(client: EciClient, clock: ManualClock) -> str:
    return await running_group(client, clock, "exec-target")


@pytest.fixture
async def bridge(client: EciClient) -> AsyncIterator[EciExecBridge]:
    bridge = EciExecBridge(client)
    try:
        yield bridge
    finally:
        await bridge.aclose()


def exec_request(group_id: str, command: list[str], **flags: bool) -> ExecContainerCommandRequest:
    request = ExecContainerCommandRequest()
    request.set_ContainerGroupId(group_id)
    request.set_ContainerName("main")
    request.set_Command(json.dumps(command))
    for name, value in flags.items():
        getattr(request, f"set_{name}")(value)
    return request


async def sdk_error(sdk: Sdk, request: ExecContainerCommandRequest) -> ServerException:
    with pytest.raises(ServerException) as caught:
        await sdk.call(request)
    return caught.value


async def last_session(emulator: EciEmulator) -> ExecSessionRecord:
    async def probe() -> ExecSessionRecord | None:
        sessions = emulator.streams.exec_socket.sessions
        return sessions[-1] if sessions else None
    return await eventually(probe, what="the emulator to record the exec session")


# The bridge, end to end


async def test_stdout_and_stderr_arrive_separately(bridge: EciExecBridge, group_id: str) -> None:
    io = stream_io()
    code = await bridge.exec(group_id, "main", ["sh", "-c", "echo out; echo err >&2"], io)
    assert (code, sink(io.stdout).data, sink(io.stderr).data) == (0, b"out\n", b"err\n")


async def test_output_larger_than_one_message_arrives_whole(bridge: EciExecBridge, group_id: str) -> None:
    io = stream_io()
    assert await bridge.exec(group_id, "main", ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"], io) == 0
    assert sink(io.stdout).data == b"x" * 300000 and len(sink(io.stdout).chunks) > 1


async def test_non_zero_exit_code_comes_back(bridge: EciExecBridge, group_id: str, emulator: EciEmulator) -> None:
    assert await bridge.exec(group_id, "main", ["sh", "-c", "exit 3"], stream_io()) == 3
    session = await last_session(emulator)
    assert (session.protocol, session.exit_code, session.ticket.command) == (V5, 3, ("sh", "-c", "exit 3"))


async def test_stdin_reaches_cat_and_its_eof_ends_it(bridge: EciExecBridge, group_id: str) -> None:
    io = stream_io(MemorySource(b"hello\n", b"world\n", eof=True))
    async with asyncio.timeout(20):  # without the EOF, cat would run on
        assert await bridge.exec(group_id, "main", ["cat"], io) == 0
    assert sink(io.stdout).data == b"hello\nworld\n"


async def test_v4_stdin_is_delivered_without_eof(client: EciClient, group_id: str) -> None:
    bridge = EciExecBridge(client, protocols=(V4, V1))
    try:
        io = stream_io(MemorySource(b"first\nsecond\n", eof=True))
        assert await bridge.exec(group_id, "main", ["head", "-n", "1"], io) == 0
    finally:
        await bridge.aclose()
    assert sink(io.stdout).data == b"first\n"


async def test_tty_resize_reaches_stty(bridge: EciExecBridge, group_id: str) -> None:
    io = stream_io(tty=True)
    io.resizes.put(TerminalSize(width=101, height=37))
    assert await bridge.exec(group_id, "main", ["stty", "size"], io) == 0
    assert sink(io.stdout).data.strip() == b"37 101"


@pytest.mark.parametrize(("offer", "negotiated"), [((V4, V1), V4), ((V1,), V1)])
async def test_older_protocols_still_carry_the_exit_code(client: EciClient, group_id: str, emulator: EciEmulator,
                                                        offer: tuple[str, ...], negotiated: str) -> None:
    bridge = EciExecBridge(client, protocols=offer)
    try:
        assert await bridge.exec(group_id, "main", ["sh", "-c", "exit 7"], stream_io()) == 7
        assert await bridge.exec(group_id, "main", ["true"], stream_io()) == 0
    finally:
        await bridge.aclose()
    assert (await last_session(emulator)).protocol == negotiated


async def test_refused_subprotocol_offer_falls_back_to_none(bridge: EciExecBridge, group_id: str,
                                                            emulator: EciEmulator) -> None:
    emulator.streams.exec_socket.refuse_subprotocols = True
    assert await bridge.exec(group_id, "main", ["sh", "-c", "exit 4"], stream_io()) == 4
    assert len(emulator.calls("ExecContainerCommand")) == 2
    assert (await last_session(emulator)).protocol == V1


async def test_container_not_running_is_not_found(bridge: EciExecBridge, client: EciClient,
                                                  emulator: EciEmulator) -> None:
    pending = await client.create_container_group({"ContainerGroupName": "not-yet", "Container": [
        {"Name": "main", "Image": "busybox", "Command": ["sleep", "3600"]}]})
    with pytest.raises(NotFound, match="is not running"):
        await bridge.exec(pending, "main", ["true"], stream_io())
    assert [c.code for c in emulator.calls("ExecContainerCommand")] == ["IncorrectStatus"]


async def test_a_missing_executable_is_not_found_with_runcs_words(bridge: EciExecBridge, group_id: str) -> None:
    with pytest.raises(NotFound, match="executable file not found"):
        await bridge.exec(group_id, "main", ["no-such-command-anywhere"], stream_io())


async def test_cancelling_the_exec_ends_the_command(bridge: EciExecBridge, group_id: str,
                                                    emulator: EciEmulator) -> None:
    io = stream_io()
    call = asyncio.create_task(bridge.exec(group_id, "main", ["sh", "-c", "echo $$; exec sleep 60"], io))
    pid = int(await sink(io.stdout).wait_for(lambda data: data.endswith(b"\n"), "the shell's pid"))
    call.cancel()
    await asyncio.gather(call, return_exceptions=True)
    assert (await last_session(emulator)).exit_code is None

    async def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    await eventually(gone, what="the command to be killed")


async def test_pings_keep_a_quiet_session_open_past_the_idle_timeout(clock: ManualClock) -> None:
    settings = EciEmulatorSettings(port=0, access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET,
                                   region_id=REGION, exec_idle_timeout_seconds=0.4)
    async with serving(settings, clock) as emulator:
        client = eci_client(emulator)
        pinging, silent = EciExecBridge(client, ping_seconds=0.05), EciExecBridge(client, ping_seconds=60)
        try:
            group = await running_group(client, clock, "idle")
            io = stream_io()
            assert await pinging.exec(group, "main", ["sh", "-c", "sleep 1.2; echo done"], io) == 0
            assert sink(io.stdout).data == b"done\n"
            with pytest.raises(BackendUnavailable, match="1001"):
                await silent.exec(group, "main", ["sh", "-c", "sleep 1.2; echo done"], stream_io())
        finally:
            await pinging.aclose()
            await silent.aclose()
            await client.aclose()


# The action and its WebSocket on the wire


async def dial(uri: str, protocols: tuple[str, ...] = ()) -> tuple[str | None, list[bytes], int | None]:
    """Connect, send nothing, read to the end: (negotiated protocol, messages, close code)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(uri, protocols=protocols) as ws:
        messages = [message.data async for message in ws]
        return ws.protocol, messages, ws.close_code


async def test_sdk_call_returns_a_websocket_uri_on_the_emulator(sdk: Sdk, group_id: str,
                                                                emulator: EciEmulator) -> None:
    answer = await sdk.call(exec_request(group_id, ["true"]))
    host = emulator.endpoint.removeprefix("http://")
    assert answer["WebSocketUri"].startswith(f"ws://{host}/exec/?s=")
    assert answer["HttpUrl"] and answer["RequestId"]


async def test_v1_frames_ready_message_then_failure_text_then_close(sdk: Sdk, group_id: str) -> None:
    answer = await sdk.call(exec_request(group_id, ["sh", "-c", "echo hi; exit 3"], Stdin=False))
    protocol, messages, close_code = await dial(answer["WebSocketUri"])
    assert protocol is None and close_code == aiohttp.WSCloseCode.OK
    assert messages[0] == b"\x01" and b"\x01hi\n" in messages
    assert messages[-1].startswith(b"\x03command terminated with non-zero exit code") and b"3" in messages[-1]


async def test_v1_success_sends_no_status(sdk: Sdk, group_id: str) -> None:
    answer = await sdk.call(exec_request(group_id, ["true"], Stdin=False))
    _, messages, _ = await dial(answer["WebSocketUri"])
    assert not [m for m in messages if m[:1] == b"\x03"]


async def test_v4_success_sends_a_status_object(sdk: Sdk, group_id: str) -> None:
    answer = await sdk.call(exec_request(group_id, ["true"], Stdin=False))
    protocol, messages, _ = await dial(answer["WebSocketUri"], (V4,))
    assert protocol == V4
    status: dict[str, Any] = json.loads(messages[-1][1:])
    assert messages[-1][:1] == b"\x03" and status["status"] == "Success"


async def test_a_token_works_once(sdk: Sdk, group_id: str) -> None:
    uri = (await sdk.call(exec_request(group_id, ["true"], Stdin=False)))["WebSocketUri"]
    await dial(uri)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await dial(uri)
    assert caught.value.status == 403


async def test_a_token_expires_after_30_seconds(sdk: Sdk, group_id: str, clock: ManualClock) -> None:
    uri = (await sdk.call(exec_request(group_id, ["true"], Stdin=False)))["WebSocketUri"]
    await clock.advance(31)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await dial(uri)
    assert caught.value.status == 403


async def test_sync_returns_stdout_only(sdk: Sdk, group_id: str) -> None:
    answer = await sdk.call(exec_request(group_id, ["sh", "-c", "echo out; echo err >&2"], Sync=True))
    assert answer["SyncResponse"] == "out\n" and "WebSocketUri" not in answer


async def test_sync_with_tty_is_refused(sdk: Sdk, group_id: str) -> None:
    error = await sdk_error(sdk, exec_request(group_id, ["true"], Sync=True, TTY=True))
    assert error.get_error_code() == "InvalidParameter"


@pytest.mark.parametrize("command", [["echo"] * 21, ["echo", "x" * 257]])
async def test_oversized_commands_are_value_exceeded(sdk: Sdk, group_id: str, command: list[str]) -> None:
    error = await sdk_error(sdk, exec_request(group_id, command))
    assert (error.get_http_status(), error.get_error_code()) == (400, "InvalidParameter.ValueExceeded")


async def test_exec_before_running_is_incorrect_status(sdk: Sdk, client: EciClient) -> None:
    pending = await client.create_container_group({"ContainerGroupName": "early", "Container": [
        {"Name": "main", "Image": "busybox", "Command": ["sleep", "3600"]}]})
    error = await sdk_error(sdk, exec_request(pending, ["true"]))
    assert (error.get_http_status(), error.get_error_code()) == (400, "IncorrectStatus")


async def test_unknown_container_is_not_found(sdk: Sdk, group_id: str) -> None:
    request = exec_request(group_id, ["true"])
    request.set_ContainerName("nope")
    error = await sdk_error(sdk, request)
    assert error.get_http_status() == 404
