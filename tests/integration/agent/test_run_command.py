"""`vnode run` as an operator starts it: against a kubeconfig, until SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from kubernetes_asyncio import client

from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually


async def test_vnode_run_registers_and_stops_cleanly_on_sigterm(sandbox: RunningSandbox,
                                                                core: client.CoreV1Api) -> None:
    """`vnode run --kubeconfig` registers a Ready node and exits 0 on SIGTERM, leaving the node to go NotReady."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "run", "--kubeconfig", str(sandbox.kubeconfig), "--node-name", "ci-vnode",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "VNODE_NODE__INTERNAL_IP": "127.0.0.1", "VNODE_NODE__PING_INTERVAL_SECONDS": "0.2",
             "VNODE_KUBELET__PORT": "0"})
    try:
        async def ready() -> Any:
            nodes = await core.list_node(field_selector="metadata.name=ci-vnode")
            return nodes.items and any(c.type == "Ready" and c.status == "True"
                                       for c in nodes.items[0].status.conditions)

        await eventually(ready, timeout_seconds=30, what="ci-vnode Ready")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_vnode_run_uses_kubeconfig_from_the_environment(sandbox: RunningSandbox,
                                                              core: client.CoreV1Api) -> None:
    """With no flag, KUBECONFIG points vnode at the cluster."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "run", "--node-name", "env-vnode",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "KUBECONFIG": str(sandbox.kubeconfig), "VNODE_NODE__INTERNAL_IP": "127.0.0.1",
             "VNODE_KUBELET__PORT": "0"})
    try:
        async def registered() -> bool:
            return bool((await core.list_node(field_selector="metadata.name=env-vnode")).items)

        await eventually(registered, timeout_seconds=30, what="env-vnode registered")
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
