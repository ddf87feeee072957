"""`vnode sandbox` as a user runs it: a ready line with a usable kubeconfig, and a clean, quick stop."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.kubectl import Kubectl, kubectl_binary


async def start_sandbox_process(state_dir: Path) -> asyncio.subprocess.Process:
    """`vnode sandbox` as a user starts it; stdout is read for the ready line, the log goes nowhere (an unread pipe
    could fill up and stall the process)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "sandbox", "--state-dir", str(state_dir), "--api-port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)


@pytest.fixture
async def sandbox_process(tmp_path: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    process = await start_sandbox_process(tmp_path / "state")
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("vnode sandbox ready: kubeconfig="), line
        kubeconfig = Path(line.split("kubeconfig=")[1].split()[0])
        yield process, kubeconfig
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_ready_line_gives_a_kubeconfig_that_kubectl_can_use(
    sandbox_process: tuple[asyncio.subprocess.Process, Path],
) -> None:
    """The kubeconfig named in the ready line reaches the server over TLS with the sandbox CA."""
    _, kubeconfig = sandbox_process
    result = await Kubectl(kubectl_binary(), kubeconfig).run("get", "namespaces", "-o", "name")
    assert set(result.stdout.split()) >= {"namespace/default", "namespace/kube-node-lease"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_the_sandbox_within_ten_seconds(
    sandbox_process: tuple[asyncio.subprocess.Process, Path], sig: signal.Signals
) -> None:
    """SIGTERM and SIGINT end the process cleanly (exit 0) well within 10 s."""
    process, _ = sandbox_process
    process.send_signal(sig)
    assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_a_second_start_reuses_the_state_dir(tmp_path: Path) -> None:
    """Restarting with the same state dir keeps the CA, so an existing kubeconfig stays valid."""
    state = tmp_path / "state"
    authorities = []
    for _ in range(2):
        process = await start_sandbox_process(state)
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), 30)
        authorities.append((state / "pki" / "ca.crt").read_bytes())
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
    assert authorities[0] == authorities[1]
