"""A sandbox with a virtual node on the eci provider, talking to an in-process ECI emulator through the real SDK.

The emulator runs containers on the test Docker engine (`runtime="docker"`) or runs nothing (`runtime="sim"`);
leaving the context removes whatever the node's groups left in the engine, and the volume directories.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.support.agent import agent_settings, running_agent
from tests.support.docker_world import docker_provider_settings, remove_node_containers
from tests.support.kubelet_world import KubeletWorld
from tests.support.sandbox import RunningSandbox, running_sandbox
from vnode.clock import SystemClock
from vnode.config import EciProviderSettings
from vnode.sandbox.eci.server import EciEmulator
from vnode.sandbox.eci_backend import sandbox_eci

# Short intervals: status reaches the pod within a poll, the emulator starts groups at once.
FAST_ECI = {"status_poll_seconds": 0.2, "full_resync_seconds": 1.0, "events_poll_seconds": 0.3,
            "log_poll_seconds": 0.2, "orphan_sweep_seconds": 0.5}
FAST_EMULATOR = {"scheduling_seconds": 0.1, "pending_seconds": 0.1}


@dataclass
class EciWorld(KubeletWorld):
    emulator: EciEmulator | None = None

    @property
    def eci(self) -> EciEmulator:
        assert self.emulator is not None
        return self.emulator


@dataclass
class EciBackend:
    sandbox: RunningSandbox
    emulator: EciEmulator
    node: str
    provider: dict[str, Any]  # the node's provider section, aimed at the emulator


@contextlib.asynccontextmanager
async def eci_backend(tmp: Path, node: str, *, runtime: Literal["docker", "sim"] = "docker",
                      emulator: dict[str, Any] | None = None, **provider: Any) -> AsyncIterator[EciBackend]:
    """A sandbox and an ECI emulator that outlive the agents a test starts and stops against them."""
    docker = docker_provider_settings(tmp) if runtime == "docker" else None
    emulator_overrides: dict[str, Any] = {**FAST_EMULATOR, **(emulator or {})}
    if docker is not None:
        emulator_overrides["docker"] = {key: value for key, value in docker.items() if key != "kind"}
    try:
        async with running_sandbox(tmp / "sandbox") as sandbox:
            settings = agent_settings(sandbox, node={"name": node},
                                      provider={"kind": "eci", **FAST_ECI, **provider},
                                      eci_emulator=emulator_overrides)
            async with sandbox_eci(settings, SystemClock(), runtime=runtime) as eci:
                chosen = eci.settings.provider
                assert isinstance(chosen, EciProviderSettings)
                yield EciBackend(sandbox, eci.emulator, node, chosen.model_dump(mode="json"))
    finally:
        if docker is not None:
            await remove_node_containers(docker["host"], node)
            shutil.rmtree(docker["volumes_dir"], ignore_errors=True)


@contextlib.asynccontextmanager
async def eci_world(tmp: Path, node: str, *, runtime: Literal["docker", "sim"] = "docker",
                    emulator: dict[str, Any] | None = None, **provider: Any) -> AsyncIterator[EciWorld]:
    async with eci_backend(tmp, node, runtime=runtime, emulator=emulator, **provider) as backend, running_agent(
            backend.sandbox, node={"name": node}, provider=backend.provider) as agent:
        yield EciWorld(backend.sandbox, agent, tmp, backend.emulator)


def require_runtime(runtime: str) -> None:
    """Fail (CI) or skip when the docker runtime has no engine, like the Docker provider tests."""
    if runtime == "docker":
        docker_provider_settings(Path("/nonexistent"))
    elif runtime != "sim":
        pytest.fail(f"unknown emulator runtime {runtime}")
