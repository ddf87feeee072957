from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

from tests.support.sandbox import RunningSandbox, running_sandbox


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    # A short grace so node-lifecycle behaviour is observable within a test.
    async with running_sandbox(tmp_path / "sandbox", node_monitor_grace_seconds=1.5,
                               node_monitor_period_seconds=0.1) as running:
        yield running


@pytest.fixture
async def core(sandbox: RunningSandbox) -> AsyncIterator[client.CoreV1Api]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(sandbox.kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration=configuration) as api_client:
        yield client.CoreV1Api(api_client)
