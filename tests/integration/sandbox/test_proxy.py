"""The sandbox's kubelet proxy against a stand-in kubelet on loopback TLS that demands client certificates.

Both ends sit behind the front protocol: the sandbox front splices SPDY and fresh WebSocket upgrades and
serves the rest (logs, node proxy, kept-alive WebSockets) in aiohttp; the stand-in kubelet answers SPDY in a
raw handler and everything else in aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web

from vnode.sandbox.kubelet_location import ProxyError, node_proxy_location, pod_location
from vnode.sandbox.proxy import KubeletProxy, error_response
from vnode.util.front import FrontServer, RequestHead, write_simple_response

CLIENT_CN = "kube-apiserver-kubelet-client"
WAIT = 10.0  # bound on every wait for an event the test expects; never a sleep
DENIED_STATUS = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Forbidden (user=nobody, verb=create, resource=nodes, subresource(s)=[proxy])",
    "reason": "Forbidden",
    "code": 403,
}


@dataclass
class Pki:
    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.client_cert = self.ca.issue_cert(CLIENT_CN, common_name=CLIENT_CN)

    def kubelet_server(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        self.ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def sandbox_server(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(ctx)
        return ctx

    def client(self, *, with_cert: bool) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        if with_cert:
            self.client_cert.configure_cert(ctx)
        return ctx


def peer_cn(cert: Any) -> str:
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


class StandInKubelet:
    """Enough of a kubelet: SPDY echo in a raw handler, WebSocket echo, streamed logs, a JSON endpoint."""

    def __init__(self) -> None:
        self.peer_cns: list[str] = []
        self.heads: list[RequestHead] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.release_second_line = asyncio.Event()
        self.log_cancelled = asyncio.Event()
        self.raw_done = asyncio.Event()
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        app.router.add_get("/exec/{ns}/{pod}/{container}", self.websocket_v4_only)
        app.router.add_get("/attach/{ns}/{pod}/{container}", self.websocket_v5)
        app.router.add_route("*", "/{tail:.*}", self.anything)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=2.0)
        self.front: FrontServer | None = None
        self.port = 0

    async def start(self, ctx: ssl.SSLContext) -> None:
        await self.runner.setup()
        assert self.runner.server is not None
        self.front = FrontServer(
            self.runner.server, wants_raw=lambda head: head.upgrade == "spdy/3.1", raw_handler=self.spdy
        )
        server = await self.front.listen("127.0.0.1", 0, ssl=ctx)
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self.front is not None
        await self.front.close()
        await self.runner.cleanup()

    def _record(self, request: web.Request) -> None:
        assert request.transport is not None
        self.peer_cns.append(peer_cn(request.transport.get_extra_info("peercert")))
        self.requests.append((request.method, request.path_qs, dict(request.headers)))

    async def spdy(
        self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            self.peer_cns.append(peer_cn(writer.get_extra_info("peercert")))
            self.heads.append(head)
            if "/denied/" in head.path:
                await write_simple_response(writer, 403, json.dumps(DENIED_STATUS).encode())
                return
            if "/oneshot/" in head.path:  # a session the kubelet ends: it answers, writes, closes
                writer.write(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n"
                )
                writer.write(b"\x80\x03\x00\x07bye")
                await writer.drain()
                return
            # The kubelet picks the first offered version it supports (its SPDY list stops at v4).
            chosen = next(
                v for v in head.header_values("X-Stream-Protocol-Version") if not v.startswith("v5")
            )
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                + f"X-Stream-Protocol-Version: {chosen}\r\n\r\n".encode()
            )
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self.raw_done.set()

    async def logs(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if request.match_info["pod"] == "missing":
            return web.Response(status=404, text='pod "missing" not found')
        response = web.StreamResponse()
        response.content_type = "text/plain"
        await response.prepare(request)
        await response.write(b"line 1\n")
        await self.release_second_line.wait()
        await response.write(b"line 2\n")
        if request.query.get("follow") == "true":
            try:
                await asyncio.Event().wait()  # a follow that never ends by itself
            except asyncio.CancelledError:
                self.log_cancelled.set()
                raise
        return response

    async def _echo_websocket(
        self, request: web.Request, protocols: tuple[str, ...]
    ) -> web.WebSocketResponse:
        self._record(request)
        ws = web.WebSocketResponse(protocols=protocols)
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(b"\x01" + message.data[1:])  # stdin on channel 0 comes back as stdout
        return ws

    async def websocket_v4_only(self, request: web.Request) -> web.WebSocketResponse:
        return await self._echo_websocket(request, ("v4.channel.k8s.io", "channel.k8s.io"))

    async def websocket_v5(self, request: web.Request) -> web.WebSocketResponse:
        return await self._echo_websocket(request, ("v5.channel.k8s.io", "v4.channel.k8s.io"))

    async def anything(self, request: web.Request) -> web.Response:
        self._record(request)
        if request.path == "/forbidden":
            return web.json_response(DENIED_STATUS, status=403)
        body = await request.read()
        return web.json_response({"path": request.path, "query": request.query_string, "body": body.decode()})


class Sandbox:
    """The piece under test: a front listener routing pods/* and nodes/*/proxy to `self.proxy`."""

    def __init__(self, proxy: KubeletProxy, kubelet_port: int, *, splice_websockets: bool = True) -> None:
        self.proxy = proxy
        self.splice_websockets = splice_websockets
        self.node = {
            "metadata": {"name": "vnode-1"},
            "status": {
                "addresses": [
                    {"type": "Hostname", "address": "vnode-1"},
                    {"type": "InternalIP", "address": "127.0.0.1"},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            },
        }
        self.relayed_websockets = 0
        self.unscheduled: set[str] = set()
        app = web.Application()
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/log", self.logs)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/{sub:exec|attach}", self.websocket)
        app.router.add_route("*", "/api/v1/nodes/{node}/proxy{path:.*}", self.node_proxy)
        # aiohttp's default: handlers are not cancelled when the client leaves; the proxy must notice.
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        self.front: FrontServer | None = None
        self.port = 0

    def pod(self, name: str) -> dict[str, Any]:
        node_name = "" if name in self.unscheduled else "vnode-1"
        return {
            "metadata": {"namespace": "ci", "name": name},
            "spec": {"nodeName": node_name, "containers": [{"name": "main"}]},
        }

    def node_with_port(self, port: int) -> None:
        self.node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}  # type: ignore[index]

    async def start(self, ctx: ssl.SSLContext) -> None:
        await self.runner.setup()
        assert self.runner.server is not None
        self.front = FrontServer(self.runner.server, wants_raw=self.wants_raw, raw_handler=self.raw)
        server = await self.front.listen("127.0.0.1", 0, ssl=ctx)
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self.front is not None
        await self.front.close()
        await self.runner.cleanup()

    def wants_raw(self, head: RequestHead) -> bool:
        return head.upgrade == "spdy/3.1" or (self.splice_websockets and head.upgrade == "websocket")

    async def raw(
        self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        match = re.fullmatch(r"/api/v1/namespaces/[^/]+/pods/([^/]+)/(exec|attach|portforward)", head.path)
        if match is None:
            await write_simple_response(writer, 404, b'{"kind":"Status","code":404}')
            return
        try:
            location = pod_location(self.pod(match[1]), self.node, match[2], list(head.query))
        except ProxyError as exc:
            await write_simple_response(writer, exc.code, exc.body())
            return
        await self.proxy.splice_upgrade(head, reader, writer, location)

    async def logs(self, request: web.Request) -> web.StreamResponse:
        pod = request.match_info["pod"]
        try:
            location = pod_location(self.pod(pod), self.node, "log", list(request.query.items()))
        except ProxyError as exc:
            return error_response(exc)
        return await self.proxy.proxy_http(request, location, pod_log_name=pod)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        self.relayed_websockets += 1
        sub = request.match_info["sub"]
        location = pod_location(
            self.pod(request.match_info["pod"]), self.node, sub, list(request.query.items())
        )
        return await self.proxy.relay_websocket(request, location)

    async def node_proxy(self, request: web.Request) -> web.StreamResponse:
        location = node_proxy_location(self.node, request.match_info["path"], list(request.query.items()))
        return await self.proxy.proxy_http(request, location)


@dataclass
class World:
    pki: Pki
    kubelet: StandInKubelet
    sandbox: Sandbox
    session: aiohttp.ClientSession

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.sandbox.port}"

    async def open_raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            "127.0.0.1", self.sandbox.port, ssl=self.pki.client(with_cert=False)
        )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    pki = Pki()
    kubelet = StandInKubelet()
    await kubelet.start(pki.kubelet_server())
    proxy = KubeletProxy(pki.client(with_cert=True), disconnect_poll_seconds=0.05, close_grace_seconds=2.0)
    sandbox = Sandbox(proxy, kubelet.port)
    await sandbox.start(pki.sandbox_server())
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=pki.client(with_cert=False)))
    try:
        yield World(pki, kubelet, sandbox, session)
    finally:
        await session.close()
        await sandbox.close()
        await sandbox.proxy.close()
        await proxy.close()
        await kubelet.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, str]:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    text = raw.decode("latin-1")
    return int(text.split(" ", 2)[1]), text


SPDY_HEADERS = (
    "Authorization: Bearer user-token\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: SPDY/3.1\r\n"
    "X-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: channel.k8s.io\r\n"
    "Content-Length: 0\r\n\r\n"
)


def spdy_request(pod: str, query: str = "command=sh&container=main&stdin=true&stdout=true&tty=true") -> bytes:
    line = f"POST /api/v1/namespaces/ci/pods/{pod}/exec?{query} HTTP/1.1\r\n"
    return (line + "Host: sandbox\r\n" + SPDY_HEADERS).encode()


async def test_spdy_upgrade_splices_bytes_unchanged_both_ways(world: World) -> None:
    reader, writer = await world.open_raw()
    try:
        writer.write(spdy_request("build-1"))
        await writer.drain()
        status, head = await read_head(reader)
        assert status == 101
        assert "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n" in head
        payload = os.urandom(300_000) + bytes(
            range(256)
        )  # more than the buffers hold: backpressure both ways

        async def send() -> None:
            for start in range(0, len(payload), 16384):
                writer.write(payload[start : start + 16384])
                await writer.drain()

        async def receive() -> bytes:
            return await reader.readexactly(len(payload))

        _, echoed = await asyncio.wait_for(asyncio.gather(send(), receive()), WAIT)
        assert echoed == payload
    finally:
        writer.close()
        await writer.wait_closed()
    await asyncio.wait_for(world.kubelet.raw_done.wait(), WAIT)  # the client's close reached the kubelet

    (seen,) = world.kubelet.heads
    assert seen.method == "POST"
    assert seen.target == "/exec/ci/build-1/main?command=sh&input=1&output=1&tty=1"
    assert seen.headers["Host"] == f"127.0.0.1:{world.kubelet.port}"
    assert seen.headers.getall("X-Stream-Protocol-Version") == [
        "v5.channel.k8s.io",
        "v4.channel.k8s.io",
        "channel.k8s.io",
    ]
    assert seen.headers["Connection"] == "Upgrade" and seen.headers["Upgrade"] == "SPDY/3.1"
    assert "Authorization" not in seen.headers
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert world.kubelet.peer_cns == [CLIENT_CN]


async def test_the_kubelet_ending_a_session_ends_the_tunnel(world: World) -> None:
    reader, writer = await world.open_raw()
    try:
        writer.write(spdy_request("oneshot"))
        await writer.drain()
        status, _ = await read_head(reader)
        rest = await asyncio.wait_for(reader.read(), WAIT)  # everything up to EOF
    finally:
        writer.close()
        await writer.wait_closed()
    assert status == 101
    assert rest == b"\x80\x03\x00\x07bye"


async def test_refused_upgrade_reaches_the_client_intact(world: World) -> None:
    reader, writer = await world.open_raw()
    try:
        writer.write(spdy_request("denied"))
        await writer.drain()
        status, head = await read_head(reader)
        body = await asyncio.wait_for(reader.read(), WAIT)  # the proxy closes after the answer
    finally:
        writer.close()
        await writer.wait_closed()
    assert status == 403
    assert "Content-Type: application/json\r\n" in head
    assert json.loads(body) == DENIED_STATUS


async def test_a_kubelet_that_cannot_be_dialed_is_an_apiserver_style_500(world: World) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    world.sandbox.node_with_port(dead_port)
    reader, writer = await world.open_raw()
    try:
        writer.write(spdy_request("build-1"))
        await writer.drain()
        status, _ = await read_head(reader)
        body = json.loads(await asyncio.wait_for(reader.read(), WAIT))
    finally:
        writer.close()
        await writer.wait_closed()
    assert status == 500
    assert (
        body["message"]
        == f"error dialing backend: dial tcp 127.0.0.1:{dead_port}: connect: connection refused"
    )
    async with world.session.get(f"{world.base}/api/v1/nodes/vnode-1/proxy/healthz") as response:
        assert response.status == 503
        status_body = await response.json()
    assert status_body["reason"] == "ServiceUnavailable"
    assert status_body["message"].startswith("error trying to reach service: dial tcp 127.0.0.1:")


async def test_a_proxy_without_the_client_certificate_is_refused(world: World) -> None:
    anonymous = KubeletProxy(world.pki.client(with_cert=False))
    world.sandbox.proxy = anonymous
    try:
        reader, writer = await world.open_raw()
        try:
            writer.write(spdy_request("build-1"))
            await writer.drain()
            status, _ = await read_head(reader)
        finally:
            writer.close()
            await writer.wait_closed()
        assert status == 500
        async with world.session.get(f"{world.base}/api/v1/nodes/vnode-1/proxy/healthz") as response:
            assert response.status == 503
    finally:
        await anonymous.close()
    assert world.kubelet.peer_cns == []  # the kubelet never served it


@pytest.mark.parametrize(
    ("subresource", "offered", "chosen"),
    [
        ("exec", ("v5.channel.k8s.io", "v4.channel.k8s.io"), "v4.channel.k8s.io"),  # a real kubelet's WS list
        ("attach", ("v5.channel.k8s.io", "v4.channel.k8s.io"), "v5.channel.k8s.io"),
        ("attach", ("v4.channel.k8s.io",), "v4.channel.k8s.io"),
    ],
)
@pytest.mark.parametrize("splice", [True, False], ids=["spliced", "relayed"])
async def test_websocket_upgrades_negotiate_and_carry_binary_frames(
    world: World, subresource: str, offered: tuple[str, ...], chosen: str, splice: bool
) -> None:
    world.sandbox.splice_websockets = splice
    url = f"{world.base}/api/v1/namespaces/ci/pods/build-1/{subresource}?command=sh&stdin=true&stdout=true"
    async with world.session.ws_connect(url, protocols=offered, headers={"Authorization": "Bearer t"}) as ws:
        assert ws.protocol == chosen
        await ws.send_bytes(b"\x00" + bytes(range(256)))
        reply = await asyncio.wait_for(ws.receive(), WAIT)
        assert reply.type is aiohttp.WSMsgType.BINARY
        assert reply.data == b"\x01" + bytes(range(256))
    assert world.sandbox.relayed_websockets == (0 if splice else 1)
    method, path_qs, headers = world.kubelet.requests[-1]
    assert method == "GET"
    expected_query = "command=sh&input=1&output=1" if subresource == "exec" else "input=1&output=1"
    assert path_qs == f"/{subresource}/ci/build-1/main?{expected_query}"
    assert "Authorization" not in headers
    assert world.kubelet.peer_cns[-1] == CLIENT_CN


async def test_websocket_on_a_kept_alive_connection_is_relayed_by_aiohttp(world: World) -> None:
    connector = aiohttp.TCPConnector(ssl=world.pki.client(with_cert=False), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{world.base}/api/v1/nodes/vnode-1/proxy/healthz") as response:
            assert response.status == 200
            await response.read()
        url = f"{world.base}/api/v1/namespaces/ci/pods/build-1/exec?command=sh&stdin=1&stdout=1"
        async with session.ws_connect(url, protocols=("v4.channel.k8s.io",)) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            await ws.send_bytes(b"\x00ping")
            assert (await asyncio.wait_for(ws.receive_bytes(), WAIT)) == b"\x01ping"
    assert world.sandbox.relayed_websockets == 1
    assert world.sandbox.front is not None and world.sandbox.front.raw_connections == 0


async def test_logs_stream_each_chunk_as_it_is_produced(world: World) -> None:
    url = f"{world.base}/api/v1/namespaces/ci/pods/build-1/log?follow=true&container=main"
    async with world.session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        received = b""
        while b"line 1\n" not in received:  # the kubelet holds line 2 until we have seen line 1
            received += await asyncio.wait_for(response.content.readany(), WAIT)
        assert received == b"line 1\n"
        world.kubelet.release_second_line.set()
        while b"line 2\n" not in received:
            received += await asyncio.wait_for(response.content.readany(), WAIT)
        assert received == b"line 1\nline 2\n"
    # Leaving the follow must stop the kubelet request too.
    await asyncio.wait_for(world.kubelet.log_cancelled.wait(), WAIT)
    assert world.kubelet.requests[0][1] == "/containerLogs/ci/build-1/main?follow=true"
    assert world.kubelet.peer_cns == [CLIENT_CN]


async def test_log_of_an_unscheduled_pod_is_no_content(world: World) -> None:
    world.sandbox.unscheduled.add("pending")
    async with world.session.get(f"{world.base}/api/v1/namespaces/ci/pods/pending/log") as response:
        assert response.status == 204
        assert await response.read() == b""
    assert world.kubelet.requests == []


async def test_log_errors_become_status(world: World) -> None:
    async with world.session.get(f"{world.base}/api/v1/namespaces/ci/pods/missing/log") as response:
        assert response.status == 404
        body = await response.json()
    assert body["reason"] == "NotFound"
    assert body["message"] == "the server could not find the requested resource ( pods/log missing)"


async def test_node_proxy_forwards_method_body_query_and_refusals(world: World) -> None:
    async with world.session.post(
        f"{world.base}/api/v1/nodes/vnode-1/proxy/run/ci?cmd=ls",
        data=b"payload",
        headers={"Authorization": "x"},
    ) as response:
        assert response.status == 200
        assert await response.json() == {"path": "/run/ci", "query": "cmd=ls", "body": "payload"}
    _, _, headers = world.kubelet.requests[-1]
    assert "Authorization" not in headers
    assert headers["X-Forwarded-Uri"] == "/api/v1/nodes/vnode-1/proxy/run/ci"
    async with world.session.get(f"{world.base}/api/v1/nodes/vnode-1/proxy/forbidden") as response:
        assert response.status == 403
        assert await response.json() == DENIED_STATUS
    async with world.session.get(
        f"{world.base}/api/v1/nodes/vnode-1/proxy?a=1", allow_redirects=False
    ) as response:
        assert response.status == 301
        assert response.headers["Location"] == "/api/v1/nodes/vnode-1/proxy/?a=1"


async def test_front_rejects_oversized_and_malformed_heads(world: World) -> None:
    start = b"GET / HTTP/1.1\r\nX-Big: "
    # One byte over the 64 KiB limit and nothing more, so the front has read all of it when it answers.
    oversized = start + b"a" * (64 * 1024 + 1 - len(start))
    for request, expected in (
        (oversized, b"HTTP/1.1 431 "),
        (b"GET / HTTP/1.1\r\nbad header line\r\n\r\n", b"HTTP/1.1 400 "),
    ):
        reader, writer = await world.open_raw()
        try:
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), WAIT)
        finally:
            writer.close()
            await writer.wait_closed()
        assert answer.startswith(expected), answer[:40]
