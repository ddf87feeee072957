"""Starting the sandbox API server in-process for a test, on a free loopback port with its own state dir."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnode.config import load_settings
from vnode.sandbox.main import build_server
from vnode.sandbox.server import SandboxApiServer


@dataclass
class RunningSandbox:
    server: SandboxApiServer
    kubeconfig: Path
    state_dir: Path

    @property
    def url(self) -> str:
        return self.server.url


@contextlib.asynccontextmanager
async def running_sandbox(state_dir: Path, **sandbox_overrides: Any) -> AsyncIterator[RunningSandbox]:
    settings = load_settings(overrides={"sandbox": {"state_dir": state_dir, "api_port": 0, **sandbox_overrides}})
    server = build_server(settings)
    task = asyncio.create_task(server.run(), name="test sandbox")
    try:
        ready = asyncio.create_task(server.ready.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
            if task.done():
                task.result()
            raise TimeoutError("sandbox did not become ready")
        kubeconfig = state_dir / "kubeconfig"
        server.pki.write_kubeconfig(kubeconfig, server.url)
        yield RunningSandbox(server, kubeconfig, state_dir)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
