"""Sandbox API server throughput: pod creates per second, and create→watch delivery latency with 5 watchers.

The server runs as `vnode sandbox` in its own process (as users run it); this process is the load generator.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.bench.kubeconfig import client_from_kubeconfig

PODS = 4000
CONCURRENCY = 32
WATCHERS = 5


def pod(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                       "spec": {"nodeName": "bench-node", "containers": [{"name": "c", "image": "busybox:1.36"}]}
                       }).encode()


async def start_sandbox(state_dir: Path) -> tuple[asyncio.subprocess.Process, Path]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "--log-level", "WARNING", "sandbox", "--state-dir", str(state_dir),
        "--api-port", "0", stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    if "ready:" not in line:
        raise RuntimeError(f"sandbox did not start: {line!r}")
    return process, Path(line.split("kubeconfig=")[1].split()[0])


async def watch(session: aiohttp.ClientSession, url: str, seen: dict[str, float], done: asyncio.Event,
                started: asyncio.Event) -> list[float]:
    arrivals: list[float] = []
    async with session.get(f"{url}/api/v1/namespaces/default/pods?watch=true&resourceVersion=1",
                           timeout=aiohttp.ClientTimeout(total=None)) as response:
        started.set()
        async for line in response.content:
            event = json.loads(line)
            name = event["object"]["metadata"]["name"]
            arrivals.append(time.perf_counter() - seen[name])
            if len(arrivals) == PODS:
                break
    done.set()
    return arrivals


async def main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        process, kubeconfig = await start_sandbox(Path(tmp) / "sandbox")
        try:
            url, tls = client_from_kubeconfig(kubeconfig)
            connector = aiohttp.TCPConnector(ssl=tls, limit=CONCURRENCY + WATCHERS + 4)
            async with aiohttp.ClientSession(connector=connector) as session:
                sent: dict[str, float] = {}
                started = [asyncio.Event() for _ in range(WATCHERS)]
                done = [asyncio.Event() for _ in range(WATCHERS)]
                watchers = [asyncio.create_task(watch(session, url, sent, d, s))
                            for d, s in zip(done, started, strict=True)]
                await asyncio.gather(*(s.wait() for s in started))
                names = iter(range(PODS))

                async def creator() -> None:
                    for n in names:
                        name = f"bench-{n}"
                        sent[name] = time.perf_counter()
                        async with session.post(f"{url}/api/v1/namespaces/default/pods", data=pod(name),
                                                headers={"Content-Type": "application/json"}) as response:
                            assert response.status == 201, await response.text()
                            await response.read()

                begin = time.perf_counter()
                await asyncio.gather(*(creator() for _ in range(CONCURRENCY)))
                elapsed = time.perf_counter() - begin
                latencies = sorted(x for result in await asyncio.gather(*watchers) for x in result)
        finally:
            process.terminate()
            await process.wait()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return (f"sandbox API: {PODS / elapsed:,.0f} pod creates/s ({PODS} pods, {CONCURRENCY} concurrent clients); "
            f"create→watch delivery with {WATCHERS} watchers: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
