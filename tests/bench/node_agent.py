"""vnode's own speed with the mock provider (instant start): 5,000 pods bound→Running as fast as vnode goes with
client QPS unlimited, bound→Running latency at a steady 100 pods/s, and vnode's peak RSS with every pod running.

Three processes, as in production: the sandbox API server (`vnode sandbox --no-node`), vnode (`vnode run`), and
this load generator, which creates pods already bound to the node and watches them become Running.
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
from tests.bench.sandbox_api import CONCURRENCY, create_pods, start_sandbox

BURST_PODS = 5000
PACED_PODS = 1000
PACED_RATE = 100.0


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def start_vnode(kubeconfig: Path, cost_db: Path) -> asyncio.subprocess.Process:
    # A fresh cost ledger per run: the default (.vnode/cost under the working directory) would carry the last run's
    # 6,000 open pods into this one's startup.
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "--log-level", "WARNING", "run", "--kubeconfig", str(kubeconfig),
        env={**os.environ, "VNODE_KUBE__QPS": "0", "VNODE_NODE__INTERNAL_IP": "127.0.0.1",
             "VNODE_PODS__WORKERS": "32", "VNODE_KUBELET__PORT": "0", "VNODE_COST__DB_PATH": str(cost_db)})


class RunningWatcher:
    """Watches pods; records when each first reports phase Running."""

    def __init__(self) -> None:
        self.running_at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str, started: asyncio.Event) -> None:
        async with session.get(f"{url}/api/v1/namespaces/default/pods", params={"watch": "true"},
                               timeout=aiohttp.ClientTimeout(total=None)) as response:
            started.set()
            async for line in response.content:
                obj = json.loads(line)["object"]
                name = obj["metadata"]["name"]
                if obj.get("status", {}).get("phase") == "Running" and name not in self.running_at:
                    self.running_at[name] = time.monotonic()
                    self.changed.set()

    async def wait_for(self, names: list[str], timeout_seconds: float) -> None:
        deadline = time.monotonic() + timeout_seconds
        while not all(n in self.running_at for n in names):
            self.changed.clear()
            if time.monotonic() > deadline:
                missing = sum(1 for n in names if n not in self.running_at)
                raise TimeoutError(f"{missing} pods not Running after {timeout_seconds} s")
            try:
                await asyncio.wait_for(self.changed.wait(), 5)
            except TimeoutError:
                continue


async def main() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        sandbox, kubeconfig = await start_sandbox(Path(tmp) / "sandbox", "--no-node")
        vnode = await start_vnode(kubeconfig, Path(tmp) / "cost.sqlite3")
        try:
            url, tls = client_from_kubeconfig(kubeconfig)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=CONCURRENCY + 4)) as session:
                await wait_node_ready(session, url)
                watcher = RunningWatcher()
                started = asyncio.Event()
                watching = asyncio.create_task(watcher.run(session, url, started))
                try:
                    await started.wait()
                    sent: dict[str, float] = {}
                    burst = [f"burst-{n}" for n in range(BURST_PODS)]
                    begin = time.monotonic()
                    await create_pods(session, url, burst, rate=None, sent=sent, node="vnode")
                    await watcher.wait_for(burst, 600)
                    throughput = BURST_PODS / (max(watcher.running_at[n] for n in burst) - begin)
                    rss = peak_rss_mb(vnode.pid)
                    paced = [f"paced-{n}" for n in range(PACED_PODS)]
                    await create_pods(session, url, paced, rate=PACED_RATE, sent=sent, node="vnode")
                    await watcher.wait_for(paced, 120)
                finally:
                    watching.cancel()
                    await asyncio.gather(watching, return_exceptions=True)
        finally:
            for process in (vnode, sandbox):
                process.terminate()
                await process.wait()
    latencies = sorted(watcher.running_at[n] - sent[n] for n in paced)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return (f"vnode (mock provider): {throughput:,.0f} pods/s bound→Running ({BURST_PODS} pods, client QPS "
            f"unlimited); peak RSS {rss:.0f} MB with {BURST_PODS} pods running\n"
            f"vnode (mock provider): bound→Running at {PACED_RATE:.0f} pods/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms")


async def wait_node_ready(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with session.get(f"{url}/api/v1/nodes/vnode") as response:
            if response.status == 200:
                node = await response.json()
                if any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions", [])):
                    return
        await asyncio.sleep(0.2)
    raise TimeoutError("vnode did not register a Ready node")
