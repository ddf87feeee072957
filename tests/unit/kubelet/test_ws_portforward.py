"""WebSocket port-forward, driven by a real aiohttp client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from vnode.kubelet.channels import V4
from vnode.kubelet.ws_codec import V4_BASE64, decode, encode
from vnode.kubelet.ws_portforward import PORT_FORWARD_PROTOCOLS, serve_websocket_port_forward
from vnode.providers.streams import ByteStream

Forward = Callable[[int, ByteStream], Awaitable[None]]
TIMEOUT = 10.0


async def echo(port: int, stream: ByteStream) -> None:
    while data := await stream.read():
        await stream.write(data)


@dataclass
class ForwardServer:
    url: str
    forward: Forward = echo
    served: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=PORT_FORWARD_PROTOCOLS)
        await ws.prepare(request)
        await serve_websocket_port_forward(
            ws,
            [int(port) for port in request.query.getall("port")],
            self.forward,
            idle_timeout_seconds=30,
            buffer_bytes=int(request.query.get("buffer", str(1024 * 1024))),
            client_gone_grace_seconds=float(request.query.get("grace", "2")),
            pod="web_default",
            uid="u1",
        )
        self.served.set()
        return ws


@pytest.fixture
async def server() -> AsyncIterator[ForwardServer]:
    app = web.Application()
    runner = web.AppRunner(app, shutdown_timeout=TIMEOUT)
    forward_server = ForwardServer(url="")
    app.router.add_get("/portForward", forward_server.handle)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    forward_server.url = f"http://{host}:{port}/portForward"
    try:
        yield forward_server
    finally:
        await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    client: aiohttp.ClientSession, server: ForwardServer, ports: list[int], protocol: str = V4, **query: str
) -> aiohttp.ClientWebSocketResponse:
    params = [("port", str(port)) for port in ports] + list(query.items())
    ws = await client.ws_connect(server.url, params=params, protocols=(protocol,) if protocol else ())
    assert (ws.protocol or "") == protocol
    return ws


async def receive(ws: aiohttp.ClientWebSocketResponse, protocol: str = V4) -> tuple[int, bytes]:
    msg = await ws.receive(timeout=TIMEOUT)
    assert msg.type in (WSMsgType.BINARY, WSMsgType.TEXT), msg
    return decode(protocol, msg.data)


async def send(ws: aiohttp.ClientWebSocketResponse, channel: int, payload: bytes, protocol: str = V4) -> None:
    message = encode(protocol, channel, payload)
    await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))


async def skip_port_prefixes(ws: aiohttp.ClientWebSocketResponse, count: int, protocol: str = V4) -> None:
    for _ in range(2 * count):
        await receive(ws, protocol)


@pytest.mark.parametrize("protocol", ["", V4, V4_BASE64])
async def test_each_channel_first_carries_its_port_little_endian(
    server: ForwardServer, client: aiohttp.ClientSession, protocol: str
) -> None:
    ws = await connect(client, server, [80, 8080], protocol)
    first = [await receive(ws, protocol) for _ in range(4)]
    assert first == [(0, b"\x50\x00"), (1, b"\x50\x00"), (2, b"\x90\x1f"), (3, b"\x90\x1f")]
    await ws.close()


async def test_binary_port_prefix_is_exactly_three_bytes(server: ForwardServer, client: aiohttp.ClientSession) -> None:
    # The python `kubernetes` client refuses any first frame that is not channel byte + uint16.
    ws = await connect(client, server, [443])
    msg = await ws.receive(timeout=TIMEOUT)
    assert (msg.type, msg.data) == (WSMsgType.BINARY, b"\x00\xbb\x01")
    await ws.close()


async def test_echo_through_two_ports(server: ForwardServer, client: aiohttp.ClientSession) -> None:
    ws = await connect(client, server, [80, 81])
    await skip_port_prefixes(ws, 2)
    await send(ws, 0, b"to eighty")
    await send(ws, 2, b"to eighty-one")
    received: dict[int, bytes] = {}
    while len(received) < 2:
        channel, payload = await receive(ws)
        received[channel] = payload
    assert received == {0: b"to eighty", 2: b"to eighty-one"}
    await ws.close()


async def test_forward_error_is_text_on_the_error_channel(server: ForwardServer, client: aiohttp.ClientSession) -> None:
    async def refuse(port: int, stream: ByteStream) -> None:
        raise ConnectionRefusedError(f"dial tcp 127.0.0.1:{port}: connection refused")

    server.forward = refuse
    ws = await connect(client, server, [80])
    await skip_port_prefixes(ws, 1)
    assert await receive(ws) == (
        1,
        b"error forwarding port 80 to pod web_default, uid u1: dial tcp 127.0.0.1:80: connection refused",
    )


async def test_socket_closes_1000_once_every_forward_returned(
    server: ForwardServer, client: aiohttp.ClientSession
) -> None:
    async def greet(port: int, stream: ByteStream) -> None:
        await stream.write(b"bye")

    server.forward = greet
    ws = await connect(client, server, [80])
    await skip_port_prefixes(ws, 1)
    assert await receive(ws) == (0, b"bye")
    msg = await ws.receive(timeout=TIMEOUT)
    assert (msg.type, ws.close_code) == (WSMsgType.CLOSE, 1000)


async def test_client_close_gives_the_forward_eof(server: ForwardServer, client: aiohttp.ClientSession) -> None:
    ws = await connect(client, server, [80], grace="60")  # only EOF, not the grace period, can end it in time
    await skip_port_prefixes(ws, 1)
    await ws.close()
    await asyncio.wait_for(server.served.wait(), TIMEOUT)


async def test_forward_that_ignores_the_departed_client_is_cancelled(
    server: ForwardServer, client: aiohttp.ClientSession
) -> None:
    cancelled = asyncio.Event()

    async def hang(port: int, stream: ByteStream) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server.forward = hang
    ws = await connect(client, server, [80], grace="0.05")
    await skip_port_prefixes(ws, 1)
    await ws.close()
    await asyncio.wait_for(cancelled.wait(), TIMEOUT)


async def test_client_data_on_error_channel_is_ignored(server: ForwardServer, client: aiohttp.ClientSession) -> None:
    ws = await connect(client, server, [80])
    await skip_port_prefixes(ws, 1)
    await send(ws, 1, b"not for the server")
    await send(ws, 7, b"no such port")
    await send(ws, 0, b"ping")
    assert await receive(ws) == (0, b"ping")
    await ws.close()


async def test_finished_port_does_not_stall_the_others(server: ForwardServer, client: aiohttp.ClientSession) -> None:
    async def first_port_quits(port: int, stream: ByteStream) -> None:
        if port != 80:
            await echo(port, stream)

    server.forward = first_port_quits
    ws = await connect(client, server, [80, 81], buffer="1024")
    await skip_port_prefixes(ws, 2)
    for _ in range(8):  # eight times the buffer, for a port whose forward has already returned
        await send(ws, 0, b"x" * 1024)
    await send(ws, 2, b"still flowing")
    assert await receive(ws) == (2, b"still flowing")
    await ws.close()
