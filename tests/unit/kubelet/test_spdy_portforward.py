"""SPDY port-forward sessions, driven by the test client as kubectl drives a kubelet: stream pairs by request id,
concurrent forwards, error text on the error stream, bad ports, pairing timeouts, and the WebSocket tunnel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from tests.unit.kubelet.spdy_client import ClientStream, Session, SpdyClient, spdy_session
from vnode.kubelet.spdy import frames as f
from vnode.kubelet.spdy.connection import SpdyConnection
from vnode.kubelet.spdy_portforward import Forward, serve_port_forward
from vnode.kubelet.ws_tunnel import WebSocketByteTunnel
from vnode.providers.streams import ByteStream

TIMEOUT = 10.0
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"


async def echo(port: int, stream: ByteStream) -> None:
    while data := await stream.read():
        await stream.write(f"{port}:".encode() + data)


@contextlib.asynccontextmanager
async def forwarding(
    forward: Forward = echo, *, allowed_ports: Sequence[int] | None = None, creation_timeout_seconds: float = TIMEOUT
) -> AsyncIterator[tuple[Session, asyncio.Task[None]]]:
    async with spdy_session() as s:
        serving = asyncio.create_task(
            serve_port_forward(s.conn, forward, allowed_ports=allowed_ports,
                               creation_timeout_seconds=creation_timeout_seconds, pod="web_default", uid="u1"),
            name="port-forward session",
        )
        try:
            yield s, serving
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


async def open_pair(client: SpdyClient, request_id: str | None, port: str = "80") -> tuple[ClientStream, ClientStream]:
    """The error stream and then the data stream of one forwarded connection, as client-go opens them."""
    headers = {"streamtype": "error", "port": port}
    if request_id is not None:
        headers["requestid"] = request_id
    error = await client.open_stream(headers)
    await error.close_write()  # client-go never writes to the error stream
    data = await client.open_stream({**headers, "streamtype": "data"})
    return error, data


async def test_two_concurrent_pairs_echo_independently() -> None:
    async with forwarding() as (s, _):
        error_a = await s.client.open_stream({"streamtype": "error", "port": "80", "requestid": "0"})
        error_b = await s.client.open_stream({"streamtype": "error", "port": "8080", "requestid": "1"})
        data_b = await s.client.open_stream({"streamtype": "data", "port": "8080", "requestid": "1"})
        data_a = await s.client.open_stream({"streamtype": "data", "port": "80", "requestid": "0"})
        await data_a.write(b"one")
        await data_b.write(b"two")
        async with asyncio.timeout(TIMEOUT):
            assert (await data_a.read(), await data_b.read()) == (b"80:one", b"8080:two")
        for stream in (data_a, data_b, error_a, error_b):
            await stream.close_write()
        assert (await data_a.read_all(), await data_b.read_all()) == (b"", b"")
        assert (await error_a.read_all(), await error_b.read_all()) == (b"", b"")
        assert error_a.fin_received and data_b.fin_received


async def test_forward_failure_is_written_on_the_error_stream() -> None:
    async def refuse(port: int, stream: ByteStream) -> None:
        raise ConnectionRefusedError("connection refused")

    async with forwarding(refuse) as (s, _):
        error, data = await open_pair(s.client, "0")
        assert await error.read_all() == b"error forwarding port 80 to pod web_default, uid u1: connection refused"
        assert await data.read_all() == b"" and data.fin_received


async def test_unparsable_port_is_reported_on_the_error_stream_and_data_is_reset() -> None:
    async with forwarding() as (s, _):
        error, data = await open_pair(s.client, "0", port="http")
        assert b'unable to parse "http" as a port' in await error.read_all()
        await s.client.ping()
        assert data.reset_status == f.CANCEL


async def test_port_zero_is_refused() -> None:
    async with forwarding() as (s, _):
        error, _ = await open_pair(s.client, "0", port="0")
        assert b'port "0" must be > 0' in await error.read_all()


async def test_port_outside_allowed_ports_is_refused() -> None:
    async with forwarding(allowed_ports=[8080]) as (s, _):
        error, _ = await open_pair(s.client, "0", port="80")
        assert b"port 80 is not open for forwarding" in await error.read_all()


async def test_pair_incomplete_after_the_creation_timeout_gets_an_error() -> None:
    async with forwarding(creation_timeout_seconds=0.2) as (s, _):
        error = await s.client.open_stream({"streamtype": "error", "port": "80", "requestid": "7"})
        assert b"timed out waiting for streams" in await error.read_all()


async def test_streams_without_request_id_pair_by_stream_id() -> None:
    async with forwarding() as (s, _):
        _, data = await open_pair(s.client, None)  # ids 1 and 3: the data stream's id minus 2
        await data.write(b"old client")
        async with asyncio.timeout(TIMEOUT):
            assert await data.read() == b"80:old client"


async def test_unknown_stream_type_is_reset() -> None:
    async with forwarding() as (s, _):
        odd = await s.client.open_stream({"streamtype": "stdin", "port": "80", "requestid": "0"})
        await s.client.ping()
        assert odd.reset_status == f.CANCEL


async def test_session_returns_when_the_connection_closes_and_cancels_forwards() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(port: int, stream: ByteStream) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with forwarding(hang) as (s, serving):
        await open_pair(s.client, "0")
        async with asyncio.timeout(TIMEOUT):
            await started.wait()
            await s.client.send_goaway()
            await serving
        assert cancelled.is_set()


# The WebSocket tunnel (kubectl 1.31+ port-forward reaching a kubelet that terminates it).


@contextlib.asynccontextmanager
async def tunnel_server() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,))
        await ws.prepare(request)
        tunnel = WebSocketByteTunnel(ws)
        pumping = asyncio.create_task(tunnel.run(), name="server tunnel")
        conn = SpdyConnection(tunnel.reader, tunnel.writer, idle_timeout_seconds=TIMEOUT)
        reading = asyncio.create_task(conn.run(), name="server spdy")
        try:
            await serve_port_forward(conn, echo, allowed_ports=None, creation_timeout_seconds=TIMEOUT)
        finally:
            await conn.close()
            for task in (reading, pumping):
                task.cancel()
            await asyncio.gather(reading, pumping, return_exceptions=True)
            await tunnel.aclose()
        return ws

    app = web.Application()
    app.router.add_get("/portForward", handle)
    runner = web.AppRunner(app, shutdown_timeout=TIMEOUT)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/portForward"
    finally:
        await runner.cleanup()


async def test_tunnel_messages_carry_raw_spdy_frames_without_a_prefix() -> None:
    async with (
        tunnel_server() as url,
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=(TUNNEL_PROTOCOL,)) as ws,
    ):
        assert ws.protocol == TUNNEL_PROTOCOL
        encoder = f.FrameEncoder()
        await ws.send_bytes(encoder.encode(f.SynStream(1, {"streamtype": "error", "port": "80"})))
        async with asyncio.timeout(TIMEOUT):
            message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.BINARY
        assert message.data[:8] == b"\x80\x03\x00\x02\x00\x00\x00" + bytes([len(message.data) - 8])  # SYN_REPLY


async def test_port_forward_through_the_websocket_tunnel_echoes() -> None:
    async with (
        tunnel_server() as url,
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=(TUNNEL_PROTOCOL,)) as ws,
    ):
        tunnel = WebSocketByteTunnel(ws)
        pumping = asyncio.create_task(tunnel.run(), name="client tunnel")
        try:
            async with SpdyClient(tunnel.reader, tunnel.writer) as client:
                _, data = await open_pair(client, "0")
                await data.write(b"x" * 200_000)
                await data.close_write()
                echoed = await data.read_all()
                assert echoed.replace(b"80:", b"") == b"x" * 200_000 and echoed.startswith(b"80:x")
                await client.send_goaway()
                await client.wait_goaway()
        finally:
            pumping.cancel()
            await asyncio.gather(pumping, return_exceptions=True)
            await tunnel.aclose()
