from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox import RunningSandbox, running_sandbox
from vnode.clock import SystemClock
from vnode.kube.client import KubeClient


def pod(name: str, *, node: str | None = "node-a", namespace: str = "default", **labels: str) -> dict[str, Any]:
    """A pod bound at creation (spec.nodeName), so the sandbox scheduler writes nothing more to it."""
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox:1.36"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec}


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
async def kube(sandbox: RunningSandbox) -> AsyncIterator[KubeClient]:
    async with await KubeClient.connect(sandbox.kubeconfig, clock=SystemClock()) as client:
        yield client
