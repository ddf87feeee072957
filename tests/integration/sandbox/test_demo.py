"""`make run`: examples/sandbox-demo.sh starts the sandbox, runs examples/build-pod.yaml on the virtual node and shows
its status, its logs and a command run in it with `kubectl exec`, then keeps the sandbox up until stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.docker_world import docker_provider_settings, remove_node_containers
from tests.support.kubectl import kubectl_binary

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[3]
WAIT = 60.0


async def run_demo(tmp_path: Path, **env_vars: str) -> str:
    """Run the demo until it says the sandbox keeps running; return what it printed."""
    kubectl_dir = str(Path(kubectl_binary()).parent)
    vnode = str(Path(sys.executable).parent / "vnode")
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("VNODE_PROVIDER__")}
    env = {**inherited, "PATH": f"{kubectl_dir}:{os.environ['PATH']}", "VNODE_STATE_DIR": str(tmp_path / "state"),
           "VNODE_KUBELET__PORT": "0", "HOME": str(tmp_path), **env_vars}
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
    return "".join(lines)


async def test_make_run_with_the_mock_shows_logs_and_an_exec(tmp_path: Path) -> None:
    text = await run_demo(tmp_path, VNODE_PROVIDER__KIND="mock")
    assert "with the mock provider" in text
    assert text.split("--- logs of build-pod:\n", 1)[1].startswith("compiling\ntests passed\n"), text
    assert "hello from /" in text, text


async def test_make_run_uses_a_reachable_docker_engine(tmp_path: Path) -> None:
    settings = docker_provider_settings(tmp_path)  # fails under CI without an engine
    try:
        text = await run_demo(tmp_path, VNODE_PROVIDER__NETWORK=settings["network"], DOCKER_HOST=settings["host"],
                              VNODE_PROVIDER__VOLUMES_DIR=settings["volumes_dir"], VNODE_NODE__NAME="test-demo",
                              VNODE_PROVIDER__PAUSE_IMAGE=settings["pause_image"])
    finally:
        await remove_node_containers(settings["host"], "test-demo")
    assert "with the docker provider" in text
    # The real container ran the example's command.
    assert text.split("--- logs of build-pod:\n", 1)[1].startswith("compiling\ntests passed\n"), text
