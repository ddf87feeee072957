"""A stand-in kubelet for tests: HTTPS on loopback, trusting only the sandbox CA for (required) client certificates.

It records the peer CN, method, path, query and headers of every request, serves streamed container logs, JSON
for `/pods`, `/runningpods/` and `/stats/summary`, echoes SPDY/3.1 upgrades byte for byte (in a raw handler behind
`FrontServer`, as the kubelet must) and WebSocket channel frames (stdin on channel 0 comes back on channel 1).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from vnode.util import x509
from vnode.util.front import FrontServer, RequestHead, write_simple_response

APISERVER_CLIENT_CN = "kube-apiserver-kubelet-client"
# A real kubelet's lists: SPDY stops at v4 (v5 over SPDY is v4), WebSocket goes up to v5.
SPDY_VERSIONS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io")
WEBSOCKET_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")


@dataclass(frozen=True)
class Seen:
    """One request as the stand-in received it."""

    peer_cn: str
    method: str
    path: str
    query: str  # the raw query string, as sent
    headers: CIMultiDictProxy[str]

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")


def _peer_cn(cert: Any) -> str:
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def default_json_routes(node_name: str) -> dict[str, Any]:
    pod_list = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}
    return {
        "/pods": {**pod_list, "items": [{"metadata": {"name": "from-pods", "namespace": "default"}}]},
        "/runningpods/": {**pod_list, "items": [{"metadata": {"name": "from-runningpods", "namespace": "default"}}]},
        "/stats/summary": {
            "node": {"nodeName": node_name, "startTime": "2024-05-01T10:00:00Z", "cpu": {"usageNanoCores": 7}},
            "pods": [],
        },
    }


class StandInKubelet:
    """Serves on 127.0.0.1:`port` once started (use as `async with`); its serving certificate is issued by the
    sandbox CA in `pki_dir` and written next to it under `pki_dir/../standin-kubelet/`."""

    def __init__(self, pki_dir: Path, *, node_name: str = "standin") -> None:
        self.pki_dir = pki_dir
        self.node_name = node_name
        self.seen: list[Seen] = []
        # What a log request gets: bytes are written (and flushed) in order, an Event is awaited first.
        self.log_chunks: list[bytes | asyncio.Event] = [b"stand-in log\n"]
        self.json_routes: dict[str, Any] = default_json_routes(node_name)
        self.spdy_versions: Sequence[str] = SPDY_VERSIONS
        self.websocket_protocols: Sequence[str] = WEBSOCKET_PROTOCOLS
        self.websocket_frames: list[bytes] = []  # binary frames received, in order
        self.log_stream_cancelled = asyncio.Event()
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        app.router.add_get("/exec/{ns}/{pod}/{container}", self._websocket)
        app.router.add_get("/attach/{ns}/{pod}/{container}", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._json)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=2.0)
        self._front: FrontServer | None = None
        self.port = 0

    # Lifecycle

    def ssl_context(self) -> ssl.SSLContext:
        """Serving cert from the sandbox CA; client certificates required and verified against that CA."""
        ca_cert = x509.read_cert(self.pki_dir / "ca.crt")
        ca_key = x509.read_key(self.pki_dir / "ca.key")
        cert, key = x509.issue_certificate(
            ca_cert, ca_key, common_name=f"{self.node_name}@stand-in", dns_names=["localhost"],
            ip_addresses=["127.0.0.1"], server=True,
        )
        directory = self.pki_dir.parent / "standin-kubelet"
        x509.write_cert(directory / "kubelet.crt", cert)
        x509.write_key(directory / "kubelet.key", key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(directory / "kubelet.crt", directory / "kubelet.key")
        ctx.load_verify_locations(cafile=self.pki_dir / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def start(self) -> None:
        await self._runner.setup()
        assert self._runner.server is not None
        self._front = FrontServer(
            self._runner.server, wants_raw=lambda head: head.upgrade == "spdy/3.1", raw_handler=self._spdy
        )
        server = await self._front.listen("127.0.0.1", 0, ssl=self.ssl_context())
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._front is not None:
            await self._front.close()
        await self._runner.cleanup()

    async def __aenter__(self) -> StandInKubelet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def node(self, port: int | None = None) -> dict[str, Any]:
        """A Node object pointing the API server at this stand-in (or at `port`)."""
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": {"type": "virtual-kubelet"}},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port if port is None else port}},
            },
        }

    # Recording

    def _record(self, request: web.Request) -> None:
        assert request.transport is not None
        self.seen.append(
            Seen(
                _peer_cn(request.transport.get_extra_info("peercert")),
                request.method,
                request.path,
                request.rel_url.raw_query_string,
                CIMultiDictProxy(CIMultiDict(request.headers)),
            )
        )

    # Handlers

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        response = web.StreamResponse()
        response.content_type = "text/plain"
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for chunk in self.log_chunks:
                if isinstance(chunk, asyncio.Event):
                    await chunk.wait()
                else:
                    await response.write(chunk)
        except asyncio.CancelledError:
            self.log_stream_cancelled.set()  # the API server dropped the request (its client went away)
            raise
        await response.write_eof()
        return response

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        ws = web.WebSocketResponse(protocols=tuple(self.websocket_protocols))
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                self.websocket_frames.append(message.data)
                if message.data[:1] == b"\x00":  # stdin comes back as stdout
                    await ws.send_bytes(b"\x01" + message.data[1:])
        return ws

    async def _json(self, request: web.Request) -> web.Response:
        self._record(request)
        if request.path not in self.json_routes:
            return web.Response(status=404, text="404 page not found\n")
        return web.Response(body=json.dumps(self.json_routes[request.path]).encode(), content_type="application/json")

    async def _spdy(self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.seen.append(
            Seen(_peer_cn(writer.get_extra_info("peercert")), head.method, head.path,
                 head.target.partition("?")[2], head.headers)
        )
        offered = head.header_values("X-Stream-Protocol-Version")
        chosen = next((version for version in offered if version in self.spdy_versions), None)
        if chosen is None:
            accepted = [("X-Accepted-Stream-Protocol-Versions", v) for v in self.spdy_versions]
            await write_simple_response(writer, 403, b"unable to upgrade: no common protocol version",
                                        "text/plain; charset=utf-8", accepted)
            return
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            + f"X-Stream-Protocol-Version: {chosen}\r\n\r\n".encode()
        )
        try:
            await writer.drain()
            while data := await reader.read(64 * 1024):  # echo until the client side closes
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
