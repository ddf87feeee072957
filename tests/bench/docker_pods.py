"""The Docker provider against the engine itself: a pod's bound→Running latency next to a bare `docker run` (create
+ start, until the engine reports it running) of the same image in the same run, and 50 pods started at once.

One process runs `vnode sandbox --provider docker` (API server and virtual node); this one creates pods and watches
them, and also times the bare runs through the Engine API (aiodocker), which is what `docker run` does.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp

from tests.bench.kubeconfig import client_from_kubeconfig
from tests.bench.node_agent import RunningWatcher
from tests.bench.sandbox_api import start_sandbox
from tests.support.docker_world import remove_node_containers

SEQUENTIAL = 20
CONCURRENT = 50
NODE = "bench-docker"


def images() -> tuple[str, str]:
    return (os.environ.get("VNODE_TEST_PAUSE_IMAGE", "vnode-test/pause:1"),
            os.environ.get("VNODE_TEST_TOOLS_IMAGE", "vnode-test/tools:1"))


def pod(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never",
                                     "command": ["sleep", "3600"]}]}}


async def bare_run(image: str, network: str, index: int) -> float:
    """Seconds from create to running for a bare container, as `docker run -d --network <network>` does it."""
    async with aiodocker.Docker() as docker:
        begin = time.monotonic()
        container = await docker.containers.create(
            {"Image": image, "Cmd": ["sleep", "3600"], "HostConfig": {"NetworkMode": network}},
            name=f"vnode-bench-bare-{index}")
        await container.start()
        elapsed = time.monotonic() - begin
        await container.delete(force=True)
    return elapsed


async def pod_runs(http: aiohttp.ClientSession, url: str, names: list[str], image: str,
                   watcher: RunningWatcher, *, concurrent: bool) -> list[float]:
    sent: dict[str, float] = {}

    async def create(name: str) -> None:
        sent[name] = time.monotonic()
        async with http.post(f"{url}/api/v1/namespaces/default/pods", json=pod(name, image)) as response:
            if response.status != 201:
                raise RuntimeError(await response.text())
        if not concurrent:
            await watcher.wait_for([name], 60)

    if concurrent:
        await asyncio.gather(*(create(name) for name in names))
    else:
        for name in names:
            await create(name)
    await watcher.wait_for(names, 120)
    return [watcher.running_at[name] - sent[name] for name in names]


async def main() -> str:
    pause, tools = images()
    network = os.environ.get("VNODE_TEST_DOCKER_NETWORK", "none")
    os.environ.update({"VNODE_PROVIDER__KIND": "docker", "VNODE_PROVIDER__PAUSE_IMAGE": pause,
                       "VNODE_PROVIDER__NETWORK": network})
    with tempfile.TemporaryDirectory(prefix="vnode-bench-docker-") as tmp:
        os.environ["VNODE_PROVIDER__VOLUMES_DIR"] = str(Path(tmp) / "volumes")
        process, kubeconfig = await start_sandbox(Path(tmp) / "state", "--node-name", NODE)
        try:
            url, ctx = client_from_kubeconfig(kubeconfig)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
                watcher = RunningWatcher()
                started = asyncio.Event()
                watching = asyncio.create_task(watcher.run(http, url, started))
                try:
                    await started.wait()
                    # Alternated, so both see the engine in the same state (vfs makes its timings drift).
                    bare: list[float] = []
                    sequential: list[float] = []
                    for index in range(SEQUENTIAL):
                        bare.append(await bare_run(tools, network, index))
                        sequential += await pod_runs(http, url, [f"seq-{index}"], tools, watcher, concurrent=False)
                    begin = time.monotonic()
                    await pod_runs(http, url, [f"burst-{i}" for i in range(CONCURRENT)], tools, watcher,
                                   concurrent=True)
                    burst_seconds = time.monotonic() - begin
                finally:
                    watching.cancel()
                    await asyncio.gather(watching, return_exceptions=True)
        finally:
            process.terminate()
            await process.wait()
            await remove_node_containers(None, NODE)
    bare_p50, pod_p50 = statistics.median(bare), statistics.median(sequential)
    return "\n".join([
        f"Docker provider ({SEQUENTIAL} sequential pods; sandbox network {network}):",
        f"  bare container create+start p50 {bare_p50 * 1000:.0f} ms; pod bound->Running p50 "
        f"{pod_p50 * 1000:.0f} ms (pause container + app container + status round trip): ratio "
        f"{pod_p50 / bare_p50:.2f}x",
        f"  {CONCURRENT} pods created at once: all Running in {burst_seconds:.2f} s",
    ])
