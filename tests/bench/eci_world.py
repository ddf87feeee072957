"""The processes and instruments of the ECI benchmark: `vnode eci-emulator` (sim runtime) and `vnode run --provider
eci` as separate processes, the emulator's request log, and a watch that times each pod's Running and deletion.

Times are `time.monotonic()` everywhere: one system-wide clock (CLOCK_MONOTONIC) shared by this process and the
emulator, whose request log stamps each call with its arrival (`at`). Nothing here decides what is measured.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

ACCESS_KEY_ID, ACCESS_KEY_SECRET = "bench-key", "bench-secret"
NODE = "vnode"
TAG_POD = "vnode.io/pod"  # the provider tags every group with its pod's name (providers/eci/translate.py)


def progress(message: str) -> None:
    print(f"[eci_pods {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


async def start_emulator(env: Mapping[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """`vnode eci-emulator` on a free port with the sim runtime; its endpoint from the ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "--log-level", "WARNING", "eci-emulator", "--port", "0", "--runtime", "sim",
        "--access-key-id", ACCESS_KEY_ID, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "VNODE_ECI_EMULATOR__ACCESS_KEY_SECRET": ACCESS_KEY_SECRET, **env})
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
    if "ready:" not in line:
        await stop(process)
        raise RuntimeError(f"the ECI emulator did not start: {line!r}")
    return process, line.split("endpoint=")[1].split()[0]


async def start_vnode(kubeconfig: Path, endpoint: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """`vnode run --provider eci` against the emulator (credentials from the SDK's usual variables)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "--log-level", "WARNING", "run", "--kubeconfig", str(kubeconfig),
        "--provider", "eci", "--node-name", NODE,
        env={**os.environ, "VNODE_PROVIDER__KIND": "eci", "VNODE_PROVIDER__ENDPOINT": endpoint,
             "ALIBABA_CLOUD_ACCESS_KEY_ID": ACCESS_KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
             "VNODE_NODE__INTERNAL_IP": "127.0.0.1", "VNODE_KUBELET__PORT": "0", **env})


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def memory_mb(pid: int) -> tuple[float, float]:
    """(peak RSS, current RSS) in MB, from /proc/PID/status (VmHWM, VmRSS)."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["VmRSS"].split()[0]) / 1024


def tag(params: Mapping[str, str], key: str) -> str | None:
    """The value of tag `key` in flattened RPC parameters (`Tag.N.Key` / `Tag.N.Value`)."""
    for name, value in params.items():
        if name.startswith("Tag.") and name.endswith(".Key") and value == key:
            return params.get(name[:-len("Key")] + "Value")
    return None


async def request_log(session: aiohttp.ClientSession, endpoint: str, action: str | None = None) -> list[dict[str, Any]]:
    """The emulator's request log (`GET /_emulator/requests`), oldest first."""
    query = {"action": action} if action else {}
    async with session.get(f"{endpoint}/_emulator/requests", params=query) as response:
        response.raise_for_status()
        records: list[dict[str, Any]] = (await response.json())["requests"]
    return records


class PodWatcher:
    """One watch on the namespace's pods: when each pod first showed phase Running, and when it was deleted.
    A pod that turns Failed is recorded too, so a wait can stop with the reason instead of timing out."""

    def __init__(self) -> None:
        self.running_at: dict[str, float] = {}
        self.deleted_at: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str, started: asyncio.Event) -> None:
        version = ""
        while True:  # a watch the server ends is resumed from the last resourceVersion seen
            params = {"watch": "true", **({"resourceVersion": version} if version else {})}
            async with session.get(f"{url}/api/v1/namespaces/default/pods", params=params,
                                   timeout=aiohttp.ClientTimeout(total=None)) as response:
                response.raise_for_status()
                started.set()
                async for line in response.content:
                    event = json.loads(line)
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    self._see(event["type"], obj, time.monotonic())

    def _see(self, kind: str, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        if kind == "DELETED":
            self.deleted_at.setdefault(name, now)
        elif status.get("phase") == "Running":
            self.running_at.setdefault(name, now)
        elif status.get("phase") == "Failed" and not obj["metadata"].get("deletionTimestamp"):
            self.failed.setdefault(name, f"{status.get('reason', '')}: {status.get('message', '')}")
        else:
            return
        self.changed.set()

    async def wait_for(self, names: list[str], seen: dict[str, float], what: str, timeout_seconds: float) -> None:
        """Until every pod of `names` is in `seen` (running_at or deleted_at); progress to stderr every 15 s."""
        deadline = time.monotonic() + timeout_seconds
        report = time.monotonic() + 15
        while (missing := sum(1 for n in names if n not in seen)) > 0:
            failed = [f"{n} ({self.failed[n]})" for n in names if n in self.failed][:3]
            if failed:
                raise RuntimeError(f"pods Failed while waiting for {what}: {', '.join(failed)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{missing} of {len(names)} pods not {what} after {timeout_seconds:.0f} s")
            if time.monotonic() > report:
                progress(f"  {len(names) - missing}/{len(names)} {what}")
                report = time.monotonic() + 15
            self.changed.clear()
            try:
                async with asyncio.timeout(1):
                    await self.changed.wait()
            except TimeoutError:
                continue
