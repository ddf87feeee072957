"""`make run`: examples/sandbox-demo.sh starts the sandbox, runs examples/build-pod.yaml on the virtual node and shows
its status, its logs and a command run in it with `kubectl exec`, then keeps the sandbox up until stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.kubectl import kubectl_binary

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[3]
WAIT = 60.0


async def test_make_run_shows_the_build_pods_logs_and_an_exec(tmp_path: Path) -> None:
    kubectl_dir = str(Path(kubectl_binary()).parent)
    vnode = str(Path(sys.executable).parent / "vnode")
    env = {**os.environ, "PATH": f"{kubectl_dir}:{os.environ['PATH']}", "VNODE_STATE_DIR": str(tmp_path / "state"),
           "VNODE_KUBELET__PORT": "0", "HOME": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        "bash", str(ROOT / "examples" / "sandbox-demo.sh"), vnode, "--api-port", "0", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(WAIT):
            while not any("The sandbox keeps running" in line for line in lines):
                line = await process.stdout.readline()
                assert line, "the demo ended early:\n" + "".join(lines)
                lines.append(line.decode())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        await process.wait()
    text = "".join(lines)
    logs = text.split("--- logs of build-pod:\n", 1)[1]
    assert logs.startswith("compiling\ntests passed\n"), text
    assert "hello from /" in text, text
