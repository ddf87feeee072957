"""Fixtures of the deploy tests: the kustomizations built once per session, a sandbox API server and kubectl."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.deploy.manifests import KUSTOMIZATIONS, Build, build, copy_deploy
from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox, running_sandbox


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Build]:
    """Every kustomization under deploy/, built with real kubectl (the same kustomize as `kubectl apply -k`)."""
    kubectl = kubectl_binary()
    deploy = copy_deploy(tmp_path_factory.mktemp("deploy"))
    return {name: Build(name, deploy / name, build(kubectl, deploy / name)) for name in KUSTOMIZATIONS}


@pytest.fixture(params=KUSTOMIZATIONS)
def built(request: pytest.FixtureRequest, builds: dict[str, Build]) -> Build:
    return builds[request.param]


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
def kubectl(sandbox: RunningSandbox) -> Kubectl:
    return Kubectl(kubectl_binary(), sandbox.kubeconfig)
