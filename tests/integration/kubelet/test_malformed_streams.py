"""Malformed SPDY frames and WebSocket messages sent to the real kubelet API end that one connection with an error;
the server keeps serving and no task is left behind (the suite's autouse fixture checks tasks)."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.kubelet_world import WAIT, KubeletWorld
from tests.support.wait import eventually

SPDY_UPGRADE = ("POST /exec/default/box/main?command=cat&input=1&output=1 HTTP/1.1\r\nHost: vnode\r\n"
                "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
GARBAGE = [
    b"\x80\x03\x00\x01\x00\xff\xff\xff",  # SYN_STREAM claiming a 16 MiB payload, then nothing
    b"\x80\x02\x00\x01\x00\x00\x00\x0a" + b"\x00" * 10,  # SPDY/2 version
    b"\x80\x03\x00\x01\x00\x00\x00\x0e\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00garbage!",  # bad header block
    b"\x00\x00\x00\x07\x00\x00\x00\x03abc",  # data for a stream that was never opened
    b"GET / HTTP/1.1\r\n\r\n",
]


def client_ssl(world: KubeletWorld) -> ssl.SSLContext:
    ctx = world.apiserver_client_ssl()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def send_after_upgrade(world: KubeletWorld, garbage: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", world.agent.kubelet.port, ssl=client_ssl(world))
    try:
        writer.write(SPDY_UPGRADE.encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 101"), head
        writer.write(garbage)
        await writer.drain()
        async with asyncio.timeout(WAIT):
            return await reader.read()  # the server ends the connection: EOF comes back
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def still_serving(world: KubeletWorld) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{world.kubelet_url}/healthz", ssl=client_ssl(world)) as r:
        assert (r.status, await r.text()) == (200, "ok")

    async def no_raw_connections() -> bool:
        return world.agent.kubelet.raw_connections == 0
    await eventually(no_raw_connections, timeout_seconds=WAIT, what="every SPDY connection to end")


async def test_malformed_spdy_closes_only_that_connection(world: KubeletWorld) -> None:
    await world.create_pod("box")
    for garbage in GARBAGE:
        await send_after_upgrade(world, garbage)
        await still_serving(world)


async def test_malformed_websocket_messages_close_only_that_connection(world: KubeletWorld) -> None:
    await world.create_pod("box")
    url = f"{world.kubelet_url}/exec/default/box/main?command=cat&input=1&output=1"
    # Bad base64 on a base64 protocol; a v5 close signal without its channel byte.
    cases: list[tuple[str, str | bytes]] = [("v4.base64.channel.k8s.io", "0%%%not-base64"),
                                            ("v5.channel.k8s.io", b"\xff")]
    async with aiohttp.ClientSession() as http:
        for protocol, message in cases:
            async with http.ws_connect(url, protocols=(protocol,), ssl=client_ssl(world)) as ws:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
                async with asyncio.timeout(WAIT):
                    async for _ in ws:
                        pass
                assert ws.close_code == 1002
        await still_serving(world)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garbage=st.binary(min_size=1, max_size=300))
async def test_random_bytes_after_the_upgrade_never_hurt_the_server(world: KubeletWorld, garbage: bytes) -> None:
    if world.agent.pods.informer.get("default/box") is None:
        await world.create_pod("box")
    reader, writer = await asyncio.open_connection("127.0.0.1", world.agent.kubelet.port, ssl=client_ssl(world))
    try:
        writer.write(SPDY_UPGRADE.encode() + garbage)
        await writer.drain()
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    finally:
        # Whatever state the garbage left the session in, a client that goes away ends it.
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    await still_serving(world)
