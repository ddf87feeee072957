"""vnode's kubelet API under exec load, called directly as kube-apiserver calls it (its kubelet-client certificate),
with the mock provider (commands run as host processes):

- exec stdout throughput of one stream (`head -c 512M /dev/zero`) over SPDY/3.1 and over WebSocket v5;
- time to the first stdout byte of `echo` (upgrade, streams, process start), p50/p99 over 200 sequential execs;
- 200 concurrent exec sessions over WebSocket, every one completing with exit code 0;
- vnode's RSS while a client reads a fast producer slowly (it must stay flat: backpressure, not buffering).

One process runs `vnode sandbox` (API server and virtual node); this one is the client.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.bench.kubeconfig import client_from_kubeconfig
from tests.bench.sandbox_api import start_sandbox
from tests.unit.kubelet.spdy_client import SpdyClient
from vnode.sandbox.pki import SandboxPKI

THROUGHPUT_BYTES = 512 * 1024 * 1024
FIRST_BYTE_RUNS = 200
CONCURRENT_SESSIONS = 200
SLOW_READ_SECONDS = 5.0


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def exec_query(command: list[str]) -> str:
    return "&".join(f"command={quote(part)}" for part in command) + "&output=1&error=1"


class Kubelet:
    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.port = port
        self.ctx = ctx

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    async def spdy_exec(self, command: list[str], on_stdout: Any) -> None:
        """Exec over SPDY as client-go does; `on_stdout(chunk)` sees every stdout chunk."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, ssl=self.ctx)
        writer.write((f"POST /exec/default/bench/main?{exec_query(command)} HTTP/1.1\r\nHost: vnode\r\n"
                      "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                      "\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(head.decode(errors="replace"))
        async with SpdyClient(reader, writer) as client:
            error = await client.open_stream({"streamtype": "error"})
            stdout = await client.open_stream({"streamtype": "stdout"})
            await client.open_stream({"streamtype": "stderr"})
            while chunk := await stdout.read():
                on_stdout(chunk)
            status = json.loads(await error.read_all() or b'{"status":"Success"}')
            if status["status"] != "Success":
                raise RuntimeError(status)

    async def ws_exec(self, session: aiohttp.ClientSession, command: list[str], on_stdout: Any,
                      *, pause_seconds: float = 0.0) -> None:
        async with session.ws_connect(self.url(f"/exec/default/bench/main?{exec_query(command)}"),
                                      protocols=("v5.channel.k8s.io",), ssl=self.ctx, max_msg_size=0) as ws:
            status: dict[str, Any] = {}
            async for message in ws:
                channel, payload = message.data[0], message.data[1:]
                if channel == 1:
                    on_stdout(payload)
                    if pause_seconds:
                        await asyncio.sleep(pause_seconds)  # the slow reader under test
                elif channel == 3:
                    status = json.loads(payload)
            if status.get("status") != "Success":
                raise RuntimeError(status)


async def throughput(run: Any) -> float:
    received = 0

    def count(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)

    begin = time.monotonic()
    await run(["head", "-c", str(THROUGHPUT_BYTES), "/dev/zero"], count)
    elapsed = time.monotonic() - begin
    assert received == THROUGHPUT_BYTES, received
    return received / elapsed / 1e6


async def first_byte_ms(kubelet: Kubelet) -> list[float]:
    samples: list[float] = []
    for _ in range(FIRST_BYTE_RUNS):
        begin = time.monotonic()
        arrivals: list[float] = []
        await kubelet.spdy_exec(["echo", "x"], lambda _chunk, seen=arrivals: seen.append(time.monotonic()))
        samples.append((arrivals[0] - begin) * 1000)
    return samples


async def concurrent_sessions(kubelet: Kubelet, session: aiohttp.ClientSession) -> tuple[int, float]:
    outputs: list[bytes] = []
    begin = time.monotonic()
    results = await asyncio.gather(*(kubelet.ws_exec(session, ["echo", "hello"], outputs.append)
                                     for _ in range(CONCURRENT_SESSIONS)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures or outputs.count(b"hello\n") != CONCURRENT_SESSIONS:
        raise RuntimeError(f"{len(failures)} of {CONCURRENT_SESSIONS} sessions failed: {failures[:3]}")
    return CONCURRENT_SESSIONS, time.monotonic() - begin


async def slow_reader_rss(kubelet: Kubelet, session: aiohttp.ClientSession, pid: int) -> tuple[float, float, int]:
    """RSS before and at the end of a slow read of an endless producer; the bytes actually read."""
    before = current_rss_mb(pid)
    received = 0

    def count(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)

    reading = asyncio.create_task(kubelet.ws_exec(session, ["cat", "/dev/zero"], count, pause_seconds=0.01))
    try:
        await asyncio.sleep(SLOW_READ_SECONDS)
        during = current_rss_mb(pid)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    return before, during, received


async def main() -> str:
    with tempfile.TemporaryDirectory(prefix="vnode-bench-") as tmp:
        state = Path(tmp)
        process, kubeconfig = await start_sandbox(state, "--node-name", "vnode")
        try:
            url, admin_ctx = client_from_kubeconfig(kubeconfig)
            kubelet_ctx = SandboxPKI.load_or_create(state).kubelet_client_ssl_context()
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/api/v1/nodes/vnode", ssl=admin_ctx) as response:
                    node = await response.json()
                kubelet = Kubelet(node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"], kubelet_ctx)
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench"},
                       "spec": {"nodeName": "vnode", "containers": [{"name": "main", "image": "busybox"}]}}
                async with http.post(f"{url}/api/v1/namespaces/default/pods", json=pod, ssl=admin_ctx) as response:
                    assert response.status == 201, await response.text()
                for _ in range(200):
                    async with http.get(f"{url}/api/v1/namespaces/default/pods/bench", ssl=admin_ctx) as response:
                        if (await response.json()).get("status", {}).get("phase") == "Running":
                            break
                    await asyncio.sleep(0.05)
                spdy_mbps = await throughput(kubelet.spdy_exec)
                ws_mbps = await throughput(lambda cmd, sink: kubelet.ws_exec(http, cmd, sink))
                ttfb = sorted(await first_byte_ms(kubelet))
                sessions, sessions_seconds = await concurrent_sessions(kubelet, http)
                before, during, slow_bytes = await slow_reader_rss(kubelet, http, process.pid)
        finally:
            process.terminate()
            await process.wait()
    p99 = ttfb[int(len(ttfb) * 0.99) - 1]
    return "\n".join([
        "kubelet API exec (mock provider, direct with the API server's client certificate):",
        f"  stdout throughput, one stream: SPDY/3.1 {spdy_mbps:,.0f} MB/s, WebSocket v5 {ws_mbps:,.0f} MB/s",
        f"  time to first byte of `echo` over SPDY: p50 {statistics.median(ttfb):.1f} ms, p99 {p99:.1f} ms "
        f"({FIRST_BYTE_RUNS} sequential execs)",
        f"  {sessions} concurrent WebSocket exec sessions: all exit 0 in {sessions_seconds:.2f} s",
        f"  slow reader ({SLOW_READ_SECONDS:.0f} s of `cat /dev/zero`, {slow_bytes / 1e6:.0f} MB read): vnode RSS "
        f"{before:.0f} MB before, {during:.0f} MB after",
    ])
