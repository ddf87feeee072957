from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

from tests.support.sandbox import RunningSandbox, running_sandbox


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
async def api(sandbox: RunningSandbox) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(sandbox.kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration=configuration) as api_client:
        yield api_client
