"""WebSocket exec/attach channels, driven by a real aiohttp client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from tests.support.wait import eventually
from vnode.kubelet.channels import ERROR, RESIZE, STDIN, STDOUT, V1, V4, V5, exit_status
from vnode.kubelet.ws_codec import REMOTE_COMMAND_PROTOCOLS, V1_BASE64, V4_BASE64, decode, encode, is_base64
from vnode.kubelet.ws_exec import MAX_MESSAGE_PAYLOAD, WebSocketCommandChannels
from vnode.providers.streams import StreamClosed

Behaviour = Callable[[WebSocketCommandChannels, str], Awaitable[None]]
TIMEOUT = 10.0


async def echo(channels: WebSocketCommandChannels, protocol: str) -> None:
    """Copy stdin to stdout until EOF, then end with exit code 0."""
    assert channels.io.stdin is not None and channels.io.stdout is not None
    while chunk := await channels.io.stdin.read():
        await channels.io.stdout.write(chunk)
    await channels.finish(exit_status(protocol, 0))


@dataclass
class ExecServer:
    url: str
    behaviour: Behaviour = echo
    sessions: asyncio.Queue[WebSocketCommandChannels] = field(default_factory=asyncio.Queue)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=REMOTE_COMMAND_PROTOCOLS)
        await ws.prepare(request)
        query = request.query
        async with WebSocketCommandChannels(
            ws,
            stdin=query.get("stdin", "1") == "1",
            stdout=query.get("stdout", "1") == "1",
            stderr=query.get("stderr", "1") == "1",
            tty=query.get("tty") == "1",
            idle_timeout_seconds=float(query.get("idle", "30")),
            stdin_buffer_bytes=int(query.get("buffer", str(1024 * 1024))),
        ) as channels:
            self.sessions.put_nowait(channels)
            await self.behaviour(channels, ws.ws_protocol or "")
        return ws


@pytest.fixture
async def server() -> AsyncIterator[ExecServer]:
    app = web.Application()
    runner = web.AppRunner(app, shutdown_timeout=TIMEOUT)  # a stuck handler fails the test fast, not in 60 s
    exec_server = ExecServer(url="")
    app.router.add_get("/exec", exec_server.handle)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    exec_server.url = f"http://{host}:{port}/exec"
    try:
        yield exec_server
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    client: aiohttp.ClientSession, server: ExecServer, protocol: str = V4, *, skip_ready: bool = True, **query: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect(server.url, params=query, protocols=(protocol,) if protocol else ())
    assert (ws.protocol or "") == protocol
    if skip_ready:
        assert await receive(ws, protocol) == (STDOUT, b"")
    return ws


async def receive(ws: aiohttp.ClientWebSocketResponse, protocol: str) -> tuple[int, bytes]:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type in (WSMsgType.BINARY, WSMsgType.TEXT), msg
    return decode(protocol, msg.data)


async def send(ws: aiohttp.ClientWebSocketResponse, protocol: str, channel: int, payload: bytes) -> None:
    message = encode(protocol, channel, payload)
    if isinstance(message, str):
        await ws.send_str(message)
    else:
        await ws.send_bytes(message)


async def read_stdout(ws: aiohttp.ClientWebSocketResponse, protocol: str, size: int) -> bytes:
    data = b""
    while len(data) < size:
        channel, payload = await receive(ws, protocol)
        assert channel == STDOUT
        data += payload
    return data


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type is WSMsgType.CLOSE, msg
    return ws.close_code


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, b"\x01"), ({"stdout": "0"}, b"\x02"), ({"stdout": "0", "stderr": "0"}, b"\x03")],
    ids=["stdout", "stderr", "error"],
)
async def test_ready_message_first_on_lowest_writable_channel(
    server: ExecServer, client: aiohttp.ClientSession, query: dict[str, str], expected: bytes
) -> None:
    ws = await connect(client, server, skip_ready=False, **query)
    msg = await ws.receive(timeout=TIMEOUT)
    assert (msg.type, msg.data) == (WSMsgType.BINARY, expected)
    await ws.close()


@pytest.mark.parametrize("protocol", ["", V1, V1_BASE64, V4, V4_BASE64, V5])
async def test_stdin_is_echoed_in_the_protocols_framing(
    server: ExecServer, client: aiohttp.ClientSession, protocol: str
) -> None:
    ws = await connect(client, server, protocol)
    await send(ws, protocol, STDIN, b"hello\n")
    msg = await ws.receive(timeout=TIMEOUT)
    expected_type = WSMsgType.TEXT if is_base64(protocol) else WSMsgType.BINARY
    assert (msg.type, decode(protocol, msg.data)) == (expected_type, (STDOUT, b"hello\n"))
    await ws.close()


async def test_text_frame_stdin_on_binary_protocol_is_accepted(
    server: ExecServer, client: aiohttp.ClientSession
) -> None:
    ws = await connect(client, server, V4)
    await ws.send_str("\x00ls\n")  # what the python `kubernetes` client sends for str input
    assert await read_stdout(ws, V4, 3) == b"ls\n"
    await ws.close()


async def test_v5_close_signal_gives_stdin_eof(server: ExecServer, client: aiohttp.ClientSession) -> None:
    ws = await connect(client, server, V5)
    await send(ws, V5, STDIN, b"abc")
    await ws.send_bytes(bytes((255, STDIN)))
    assert await read_stdout(ws, V5, 3) == b"abc"
    assert await receive(ws, V5) == (ERROR, exit_status(V5, 0))


async def test_status_on_error_channel_then_close_1000(server: ExecServer, client: aiohttp.ClientSession) -> None:
    async def exit_three(channels: WebSocketCommandChannels, protocol: str) -> None:
        await channels.finish(exit_status(protocol, 3))

    server.behaviour = exit_three
    ws = await connect(client, server, V4)
    channel, payload = await receive(ws, V4)
    assert (channel, json.loads(payload)["details"]["causes"][0]["message"]) == (ERROR, "3")
    assert await closed_with(ws) == 1000


async def report_resizes(channels: WebSocketCommandChannels, protocol: str) -> None:
    assert channels.io.stdout is not None
    async for size in channels.io.resizes:
        await channels.io.stdout.write(f"{size.width}x{size.height}".encode())
        break
    await channels.finish(exit_status(protocol, 0))


async def test_resize_reaches_the_resize_queue(server: ExecServer, client: aiohttp.ClientSession) -> None:
    server.behaviour = report_resizes
    ws = await connect(client, server, V4, tty="1")
    await send(ws, V4, RESIZE, b'{"Width":100,"Height":30}')
    assert await receive(ws, V4) == (STDOUT, b"100x30")
    await ws.close()


async def test_malformed_resize_is_ignored(server: ExecServer, client: aiohttp.ClientSession) -> None:
    server.behaviour = report_resizes
    ws = await connect(client, server, V4, tty="1")
    await send(ws, V4, RESIZE, b'{"Width":-1,')
    await send(ws, V4, RESIZE, b'{"width":80,"height":24}')  # Go matches JSON keys case-insensitively
    assert await receive(ws, V4) == (STDOUT, b"80x24")
    await ws.close()


async def test_client_disconnect_makes_client_gone_return(server: ExecServer, client: aiohttp.ClientSession) -> None:
    gone = asyncio.Event()

    async def wait_for_client(channels: WebSocketCommandChannels, protocol: str) -> None:
        await channels.client_gone()
        gone.set()

    server.behaviour = wait_for_client
    ws = await connect(client, server, V4)
    await ws.close()
    await asyncio.wait_for(gone.wait(), TIMEOUT)


async def test_write_after_client_left_raises_stream_closed(server: ExecServer, client: aiohttp.ClientSession) -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def write_late(channels: WebSocketCommandChannels, protocol: str) -> None:
        await channels.client_gone()
        assert channels.io.stdout is not None
        try:
            await channels.io.stdout.write(b"too late")
        except StreamClosed as exc:
            outcome.set_result(exc)
        else:
            outcome.set_result(None)

    server.behaviour = write_late
    ws = await connect(client, server, V4)
    await ws.close()
    assert isinstance(await asyncio.wait_for(outcome, TIMEOUT), StreamClosed)


@pytest.mark.parametrize(
    ("protocol", "message"),
    [(V5, bytes((255, 0, 0))), (V5, bytes((255, 9))), (V4_BASE64, "0not*base64")],
    ids=["close-signal-length", "close-signal-channel", "bad-base64"],
)
async def test_malformed_message_closes_only_that_connection(
    server: ExecServer, client: aiohttp.ClientSession, protocol: str, message: str | bytes
) -> None:
    bad = await connect(client, server, protocol)
    good = await connect(client, server, protocol)
    await (bad.send_str(message) if isinstance(message, str) else bad.send_bytes(message))
    assert await closed_with(bad) == 1002
    await send(good, protocol, STDIN, b"still here")
    assert await read_stdout(good, protocol, 10) == b"still here"
    await good.close()


async def test_data_on_server_write_channels_is_ignored(server: ExecServer, client: aiohttp.ClientSession) -> None:
    ws = await connect(client, server, V4)
    for channel in (1, 2, 3, 9, 255):
        await send(ws, V4, channel, b"ignored")
    await ws.send_bytes(b"")  # empty messages are skipped too
    await send(ws, V4, STDIN, b"ok")
    assert await read_stdout(ws, V4, 2) == b"ok"
    await ws.close()


async def test_large_output_is_split_into_32k_messages(server: ExecServer, client: aiohttp.ClientSession) -> None:
    big = bytes(range(256)) * 1000

    async def write_big(channels: WebSocketCommandChannels, protocol: str) -> None:
        assert channels.io.stdout is not None
        await channels.io.stdout.write(big)
        await channels.finish(exit_status(protocol, 0))

    server.behaviour = write_big
    ws = await connect(client, server, V4)
    sizes: list[int] = []
    data = b""
    while len(data) < len(big):
        channel, payload = await receive(ws, V4)
        sizes.append(len(payload))
        data += payload
    assert (data, max(sizes)) == (big, MAX_MESSAGE_PAYLOAD)
    await ws.close()


async def test_pings_are_answered(server: ExecServer, client: aiohttp.ClientSession) -> None:
    ws = await client.ws_connect(server.url, protocols=(V4,), autoping=False)
    assert await receive(ws, V4) == (STDOUT, b"")
    await ws.ping(b"keepalive")
    msg = await ws.receive(timeout=TIMEOUT)
    assert (msg.type, msg.data) == (WSMsgType.PONG, b"keepalive")
    await ws.close()


async def test_idle_session_is_closed(server: ExecServer, client: aiohttp.ClientSession) -> None:
    gone = asyncio.Event()

    async def wait_for_client(channels: WebSocketCommandChannels, protocol: str) -> None:
        await channels.client_gone()
        gone.set()

    server.behaviour = wait_for_client
    ws = await connect(client, server, V4, idle="0.2")
    assert await closed_with(ws) == 1001
    await asyncio.wait_for(gone.wait(), TIMEOUT)


async def test_stdin_buffer_stays_bounded_when_the_consumer_does_not_read(
    server: ExecServer, client: aiohttp.ClientSession
) -> None:
    limit, chunk, total = 256 * 1024, 64 * 1024, 10 * 1024 * 1024
    release = asyncio.Event()

    async def read_later(channels: WebSocketCommandChannels, protocol: str) -> None:
        assert channels.io.stdin is not None and channels.io.stdout is not None
        await release.wait()
        received = 0
        while received < total and (data := await channels.io.stdin.read()):
            received += len(data)
        await channels.io.stdout.write(str(received).encode())
        await channels.finish(exit_status(protocol, 0))

    server.behaviour = read_later
    ws = await connect(client, server, V4, buffer=str(limit))
    channels = await asyncio.wait_for(server.sessions.get(), TIMEOUT)
    most_buffered = 0

    async def send_all() -> None:
        nonlocal most_buffered
        for _ in range(total // chunk):
            await send(ws, V4, STDIN, b"x" * chunk)
            most_buffered = max(most_buffered, channels.stdin_buffered_bytes)

    sender = asyncio.create_task(send_all(), name="test stdin sender")
    try:
        await eventually(_async(lambda: channels.stdin_buffered_bytes >= limit), what="stdin buffer to fill")
        samples: list[int] = []

        async def settled() -> bool:
            samples.append(channels.stdin_buffered_bytes)
            return len(samples) >= 5 and len(set(samples[-5:])) == 1

        await eventually(settled, what="the receive loop to stop taking stdin")
        assert channels.stdin_buffered_bytes < limit + chunk
        release.set()
        await asyncio.wait_for(sender, TIMEOUT)
    finally:
        release.set()
        sender.cancel()
        await asyncio.wait({sender})
    assert await receive(ws, V4) == (STDOUT, str(total).encode())
    assert most_buffered < limit + chunk
    await ws.close()


def _async(probe: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return probe()

    return run


async def test_handler_failure_closes_with_internal_error(server: ExecServer, client: aiohttp.ClientSession) -> None:
    async def crash(channels: WebSocketCommandChannels, protocol: str) -> None:
        raise RuntimeError("handler bug")

    server.behaviour = crash
    ws = await connect(client, server, V4)
    assert await closed_with(ws) == 1011
