"""`make run`: examples/sandbox-demo.sh starts the sandbox, runs examples/build-pod.yaml on the virtual node and shows
its status, its logs and a command run in it with `kubectl exec`, keeps the sandbox up until stopped, and ends by
printing the example build's cost report (`vnode cost report --by build` on the sandbox's ledger)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.docker_world import docker_provider_settings, remove_node_containers
from tests.support.kubectl import kubectl_binary
from vnode.cost.reports import ESTIMATE_NOTE

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[3]
WAIT = 60.0
REPORT = "--- cost of the example build so far (vnode cost report --by build):\n"


async def run_demo(tmp_path: Path, **env_vars: str) -> str:
    """Run the demo until it has printed the cost report, its last words (mock and Docker costs are estimates, so
    the report ends with the estimate note); return what it printed."""
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
            while not lines or not lines[-1].startswith((ESTIMATE_NOTE, "(no cost report")):
                line = await process.stdout.readline()
                assert line, "the demo ended early:\n" + "".join(lines)
                lines.append(line.decode())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        await process.wait()
    return "".join(lines)


def build_row(text: str) -> list[str]:
    """The example build's row of the cost report that ends the demo: BUILD, PODS, BILLED, COST, CURRENCY."""
    assert "The sandbox keeps running" in text.split(REPORT, 1)[0], text
    report = text.split(REPORT, 1)[1].splitlines()
    assert report[0].startswith("Cost by build, "), text
    rows = [line.split() for line in report if line.startswith("vnode-example #1 ")]
    assert len(rows) == 1, text
    return ["vnode-example #1", *rows[0][2:]]


async def test_make_run_with_the_mock_shows_logs_and_an_exec(tmp_path: Path) -> None:
    text = await run_demo(tmp_path, VNODE_PROVIDER__KIND="mock")
    assert "with the mock provider" in text
    assert text.split("--- logs of build-pod:\n", 1)[1].startswith("compiling\ntests passed\n"), text
    assert "hello from /" in text, text
    _, pods, _, cost, currency = build_row(text)
    # The mock pod is still running: it has cost something, at the notional (estimated) rate.
    assert (pods, currency) == ("1", "CNY"), text
    assert cost.endswith("*") and Decimal(cost.rstrip("*")) > 0, text


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
    _, pods, _, cost, currency = build_row(text)
    assert (pods, currency) == ("1", "CNY") and cost.endswith("*"), text
