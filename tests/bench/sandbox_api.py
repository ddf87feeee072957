"""Sandbox API server: pod creates per second, and create→watch delivery latency seen by 5 watchers.

The server runs as `vnode sandbox` in its own process, as users run it. The watchers run in a second process and
the writers in this one, so neither side's client work delays the other's timestamps (time.monotonic is one
system-wide clock). Phase 1 writes as fast as 32 concurrent clients can; phase 2 writes at a steady 1,000 pods/s
and measures the latency from sending a create to each watcher receiving its event.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.bench.kubeconfig import client_from_kubeconfig

SATURATION_PODS = 4000
PACED_PODS = 3000
PACED_RATE = 1000.0
CONCURRENCY = 32
WATCHERS = 5


def pod(name: str, node: str = "bench-node") -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                       "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.36"}]}
                       }).encode()


async def start_process(*args: str) -> asyncio.subprocess.Process:
    # The virtual node's kubelet API on a free port, so benchmarks never collide with a kubelet on 10250.
    env = {**os.environ, "VNODE_KUBELET__PORT": os.environ.get("VNODE_KUBELET__PORT", "0")}
    return await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE, env=env)


async def start_sandbox(state_dir: Path, *extra: str) -> tuple[asyncio.subprocess.Process, Path]:
    process = await start_process("-m", "vnode", "--log-level", "WARNING", "sandbox", "--state-dir", str(state_dir),
                                  "--api-port", "0", *extra)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    if "ready:" not in line:
        raise RuntimeError(f"sandbox did not start: {line!r}")
    return process, Path(line.split("kubeconfig=")[1].split()[0])


async def create_pods(session: aiohttp.ClientSession, url: str, names: list[str], *, rate: float | None,
                      sent: dict[str, float], node: str = "bench-node") -> float:
    """Create the pods with CONCURRENCY clients (paced to `rate` per second if given); returns elapsed seconds."""
    queue = iter(enumerate(names))
    begin = time.monotonic()

    async def client() -> None:
        for index, name in queue:
            if rate is not None:
                delay = begin + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent[name] = time.monotonic()
            async with session.post(f"{url}/api/v1/namespaces/default/pods", data=pod(name, node),
                                    headers={"Content-Type": "application/json"}) as response:
                if response.status != 201:
                    raise RuntimeError(await response.text())
                await response.read()

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return time.monotonic() - begin


async def main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        server, kubeconfig = await start_sandbox(Path(tmp) / "sandbox", "--no-node")
        try:
            url, tls = client_from_kubeconfig(kubeconfig)
            connector = aiohttp.TCPConnector(ssl=tls, limit=CONCURRENCY + 4)
            async with aiohttp.ClientSession(connector=connector) as session:
                saturated = [f"sat-{n}" for n in range(SATURATION_PODS)]
                elapsed = await create_pods(session, url, saturated, rate=None, sent={})
                paced = [f"paced-{n}" for n in range(PACED_PODS)]
                watchers = await start_process("-m", "tests.bench.watchers", str(kubeconfig), str(WATCHERS),
                                               "paced-", str(PACED_PODS))
                assert watchers.stdout is not None
                await asyncio.wait_for(watchers.stdout.readline(), 30)  # "watching"
                sent: dict[str, float] = {}
                await create_pods(session, url, paced, rate=PACED_RATE, sent=sent)
                arrivals = json.loads(await asyncio.wait_for(watchers.stdout.read(), 120))
                await watchers.wait()
        finally:
            server.terminate()
            await server.wait()
    latencies = sorted(at - sent[name] for per_watcher in arrivals for name, at in per_watcher.items())
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return (f"sandbox API: {SATURATION_PODS / elapsed:,.0f} pod creates/s ({SATURATION_PODS} pods, {CONCURRENCY} "
            f"concurrent clients)\n"
            f"sandbox API: create→watch delivery at {PACED_RATE:,.0f} creates/s with {WATCHERS} watchers: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} events)")
