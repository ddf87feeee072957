"""The ECI provider against the ECI emulator (sim runtime): what a burst of pods costs in ECI API calls, how long ECI's
quotas make pods wait, how fast status comes back, and vnode's memory with 5,000 container groups.

Each phase runs its own three processes, as in production: the sandbox API server (`vnode sandbox --no-node`), the
ECI emulator (`vnode eci-emulator --runtime sim`) and vnode (`vnode run --provider eci`); this process creates pods
already bound to the node, watches them, and reads the emulator's request log (`GET /_emulator/requests`).
1. Real quotas (ECI's: CreateContainerGroup and DeleteContainerGroup 100 burst + 20/s; status poll every 5 s):
   a steady minute of polling with 10 pods, then 1,000 pods at once (bound→CreateContainerGroup, status
   propagation), a steady minute with 1,000, then all deleted (mutating calls per pod). vnode's API client is
   unlimited here so ECI's quotas alone pace it; 1b repeats the burst with the client at its default 50 QPS.
2. Scale (quotas opened wide on both sides): 5,000 pods Running, then vnode's peak RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.eci_world import (
    NODE,
    TAG_POD,
    PodWatcher,
    memory_mb,
    percentile,
    progress,
    request_log,
    start_emulator,
    start_vnode,
    stop,
    tag,
)
from tests.bench.kubeconfig import client_from_kubeconfig
from tests.bench.node_agent import wait_node_ready
from tests.bench.sandbox_api import CONCURRENCY, create_pods, start_sandbox

FEW, MANY, SCALE = 10, 1000, 5000
POLL_SECONDS = 5.0  # EciProviderSettings.status_poll_seconds default
RUNNING_AFTER_CREATE = 1.0 + 2.0  # the emulator's scheduling_seconds + pending_seconds defaults: group Running
# The poller's windowed polls ask for SinceSecond=60 (ECI's smallest window): a minute after the last transition
# they return nothing, so the steady minute starts then (plus slack for the tick in flight).
QUIET_AFTER_SECONDS = 65.0
MINUTE = 60.0
MUTATING = ("CreateContainerGroup", "DeleteContainerGroup")
WIDE_OPEN = json.dumps({action: {"burst": SCALE, "per_second": SCALE} for action in MUTATING})


@dataclass
class World:
    session: aiohttp.ClientSession
    url: str
    endpoint: str
    vnode_pid: int
    watcher: PodWatcher


@contextlib.asynccontextmanager
async def world(tmp: Path, emulator_env: dict[str, str], vnode_env: dict[str, str]) -> AsyncIterator[World]:
    """The three processes and a pod watch; everything stopped by PID on the way out."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        sandbox, kubeconfig = await start_sandbox(tmp / "sandbox", "--no-node")
        processes.append(sandbox)
        emulator, endpoint = await start_emulator(emulator_env)
        processes.append(emulator)
        vnode = await start_vnode(kubeconfig, endpoint, vnode_env)
        processes.append(vnode)
        url, tls = client_from_kubeconfig(kubeconfig)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=CONCURRENCY + 8)) as session:
            await wait_node_ready(session, url)
            watcher, started = PodWatcher(), asyncio.Event()
            watching = asyncio.create_task(watcher.run(session, url, started), name="pod watch")
            try:
                async with asyncio.timeout(30):
                    await started.wait()
                yield World(session, url, endpoint, vnode.pid, watcher)
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
    finally:
        for process in reversed(processes):
            await stop(process)


async def delete_pods(w: World, names: list[str]) -> None:
    pending = iter(names)

    async def client() -> None:
        for name in pending:
            async with w.session.delete(f"{w.url}/api/v1/namespaces/default/pods/{name}") as response:
                if response.status not in (200, 202):
                    raise RuntimeError(f"delete {name}: {response.status} {await response.text()}")

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


async def run_pods(w: World, names: list[str], timeout_seconds: float) -> dict[str, float]:
    """Create the pods bound to the node at once and wait until all are Running; when each was sent."""
    sent: dict[str, float] = {}
    await create_pods(w.session, w.url, names, rate=None, sent=sent, node=NODE)
    await w.watcher.wait_for(names, w.watcher.running_at, "Running", timeout_seconds)
    return sent


async def steady_minute(w: World, names: list[str]) -> Counter[str]:
    """ECI calls per action in one minute, starting once no group of `names` changed within the poll window."""
    quiet = max(w.watcher.running_at[n] for n in names) + QUIET_AFTER_SECONDS
    progress(f"  steady minute with {len(names)} pods starts in {max(0.0, quiet - time.monotonic()):.0f} s")
    await asyncio.sleep(max(0.0, quiet - time.monotonic()))
    begin = time.monotonic()
    await asyncio.sleep(MINUTE)  # the measurement window itself
    return Counter(purpose(r) for r in await request_log(w.session, w.endpoint) if begin <= r["at"] < begin + MINUTE)


def purpose(record: dict[str, Any]) -> str:
    """A call's action, and for the listing actions what the provider called it for (by its parameters)."""
    action, params = record["action"], record["params"]
    if action == "DescribeContainerGroupStatus":
        return f"{action} ({'windowed' if params.get('SinceSecond') else 'full list'})"
    if action == "DescribeContainerGroups":
        if params.get("ContainerGroupIds"):
            return f"{action} (by id)"
        return f"{action} ({'ping' if params.get('Limit') == '1' else 'tag list: orphan sweep'})"
    return str(action)


async def remove_pods(w: World, names: list[str]) -> None:
    await delete_pods(w, names)
    await w.watcher.wait_for(names, w.watcher.deleted_at, "deleted", 600)


def successful_creates(records: list[dict[str, Any]]) -> dict[str, float]:
    """Pod name → when its successful CreateContainerGroup arrived (matched by the group's pod tag)."""
    return {name: r["at"] for r in records if r["code"] == "" and (name := tag(r["params"], TAG_POD)) is not None}


def latency_lines(w: World, names: list[str], sent: dict[str, float], creates: dict[str, float]) -> list[str]:
    """bound→CreateContainerGroup (the create's arrival at the emulator) and status propagation (Running observed
    minus the moment the emulator's group turned Running), p50/p99/max."""
    bound = [creates[n] - sent[n] for n in names]
    propagation = [w.watcher.running_at[n] - (creates[n] + RUNNING_AFTER_CREATE) for n in names]
    return [
        f"  bound→CreateContainerGroup: p50 {statistics.median(bound):.1f} s, p99 {percentile(bound, 0.99):.1f} s, "
        f"max {max(bound):.1f} s (the create quota alone: ({len(names)}-100)/20 = {(len(names) - 100) / 20:.0f} s "
        f"for the last pod)",
        f"  status propagation (Running observed - group Running): p50 {statistics.median(propagation):.2f} s, "
        f"p99 {percentile(propagation, 0.99):.2f} s, max {max(propagation):.2f} s (goal p99 <= "
        f"{POLL_SECONDS + 1:g} s)"]


def minute_line(pods: int, calls: Counter[str]) -> str:
    parts = ", ".join(f"{action} {count}" for action, count in sorted(calls.items()))
    return f"  {pods:>5} pods: {sum(calls.values())} calls/min ({parts})"


async def real_quotas() -> list[str]:
    progress(f"phase 1: real quotas; {FEW} pods, then {MANY}")
    with tempfile.TemporaryDirectory(prefix="vnode-bench-eci-") as tmp:
        async with world(Path(tmp), {"VNODE_ECI_EMULATOR__REQUEST_LOG_SIZE": "1000000"},
                         {"VNODE_KUBE__QPS": "0", "VNODE_COST__DB_PATH": str(Path(tmp) / "cost.db")}) as w:
            few = [f"few-{n}" for n in range(FEW)]
            await run_pods(w, few, 120)
            few_minute = await steady_minute(w, few)
            await remove_pods(w, few)
            many = [f"pod-{n}" for n in range(MANY)]
            mark = time.monotonic()
            progress(f"  creating {MANY} pods")
            sent = await run_pods(w, many, 600)
            creates = successful_creates(await request_log(w.session, w.endpoint, "CreateContainerGroup"))
            rss_many = memory_mb(w.vnode_pid)
            many_minute = await steady_minute(w, many)
            progress(f"  deleting {MANY} pods")
            await remove_pods(w, many)
            lifecycle = [r for r in await request_log(w.session, w.endpoint) if r["at"] >= mark]
    attempts = Counter(r["action"] for r in lifecycle if r["action"] in MUTATING)
    done = Counter(r["action"] for r in lifecycle if r["action"] in MUTATING and r["code"] == "")
    throttled = Counter(r["action"] for r in lifecycle if r["action"] in MUTATING and "Throttling" in r["code"])
    other = Counter(purpose(r) for r in lifecycle if r["action"] not in MUTATING)
    return [
        f"ECI provider, real quotas ({MANY} pods created at once; sim runtime; status poll {POLL_SECONDS:g} s; "
        "API client QPS unlimited):",
        *latency_lines(w, many, sent, creates),
        f"  mutating calls per pod lifecycle: {sum(done.values()) / MANY:.2f} successful "
        f"({', '.join(f'{a} {c}' for a, c in sorted(done.items()))}); attempts {sum(attempts.values()) / MANY:.2f} "
        f"per pod, throttled {dict(throttled) or 0}",
        f"  other calls during the {MANY} pods' lifecycle: {dict(sorted(other.items()))}",
        "  polling in a steady minute (no status change within the 60 s SinceSecond window):",
        minute_line(FEW, few_minute),
        minute_line(MANY, many_minute),
        f"  vnode RSS with {MANY} pods running: peak {rss_many[0]:.0f} MB, current {rss_many[1]:.0f} MB",
    ]


async def default_client_qps() -> list[str]:
    """The same burst with vnode's API client at its defaults (the kubelet's 50 QPS, burst 100)."""
    progress(f"phase 1b: real quotas, API client at 50 QPS; {MANY} pods")
    with tempfile.TemporaryDirectory(prefix="vnode-bench-eci-") as tmp:
        async with world(Path(tmp), {}, {"VNODE_COST__DB_PATH": str(Path(tmp) / "cost.db")}) as w:
            many = [f"pod-{n}" for n in range(MANY)]
            sent = await run_pods(w, many, 600)
            creates = successful_creates(await request_log(w.session, w.endpoint, "CreateContainerGroup"))
    return [f"ECI provider, real quotas, API client at its default 50 QPS / burst 100 ({MANY} pods at once):",
            *latency_lines(w, many, sent, creates)]


async def at_scale() -> list[str]:
    progress(f"phase 2: quotas opened wide; {SCALE} pods")
    with tempfile.TemporaryDirectory(prefix="vnode-bench-eci-") as tmp:
        async with world(Path(tmp), {"VNODE_ECI_EMULATOR__THROTTLES": "{}"},
                         {"VNODE_PROVIDER__QUOTAS": WIDE_OPEN, "VNODE_PROVIDER__CAPACITY_PODS": str(SCALE),
                          "VNODE_KUBE__QPS": "0", "VNODE_PODS__WORKERS": "32",
                          "VNODE_COST__DB_PATH": str(Path(tmp) / "cost.db")}) as w:
            pods = [f"scale-{n}" for n in range(SCALE)]
            begin = time.monotonic()
            await run_pods(w, pods, 900)
            elapsed = max(w.watcher.running_at[n] for n in pods) - begin
            peak, current = memory_mb(w.vnode_pid)
    return [f"ECI provider at scale ({SCALE} pods, quotas opened wide): all Running in {elapsed:.0f} s "
            f"({SCALE / elapsed:.0f} pods/s); vnode RSS peak {peak:.0f} MB, current {current:.0f} MB (goal < 200 MB)"]


async def main() -> str:
    return "\n".join(await real_quotas() + await default_client_qps() + await at_scale())
