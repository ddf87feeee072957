"""A sandbox API server with a virtual node (mock provider) whose kubelet API is served for real on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.agent import running_agent
from tests.support.kubelet_world import KubeletWorld
from tests.support.sandbox import running_sandbox


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[KubeletWorld]:
    async with running_sandbox(tmp_path / "sandbox") as sandbox, running_agent(sandbox) as agent:
        yield KubeletWorld(sandbox, agent, tmp_path)
