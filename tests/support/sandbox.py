"""Starting the sandbox API server in-process for a test, on a free loopback port with its own state dir."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.running import running
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
    async with running(server.run(), server.ready, name="test sandbox"):
        kubeconfig = state_dir / "kubeconfig"
        server.pki.write_kubeconfig(kubeconfig, server.url)
        yield RunningSandbox(server, kubeconfig, state_dir)
