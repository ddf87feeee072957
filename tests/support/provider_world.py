"""DockerProvider driven directly against the test engine (no Kubernetes), for provider-level integration tests:
it records every status update the provider pushes and, on exit, removes what the test's node left in the engine."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker

from tests.support.docker_world import docker_provider_settings, remove_node_containers
from tests.support.running import stopped
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.config import DockerProviderSettings
from vnode.providers.base import PodRef, PodStatusUpdate
from vnode.providers.docker import naming
from vnode.providers.docker.provider import DockerProvider

WAIT_SECONDS = 30.0


@dataclass
class ProviderWorld:
    settings: DockerProviderSettings
    node: str
    provider: DockerProvider
    docker: aiodocker.Docker
    task: asyncio.Task[None]  # the provider's `run`
    updates: list[PodStatusUpdate] = field(default_factory=list)

    @classmethod
    def start(cls, settings: DockerProviderSettings, node: str, docker: aiodocker.Docker) -> ProviderWorld:
        provider = DockerProvider(settings, SystemClock(), node_name=node)
        updates: list[PodStatusUpdate] = []
        task = asyncio.create_task(provider.run(updates.append), name=f"provider {node}")
        return cls(settings, node, provider, docker, task, updates)

    def restarted(self) -> ProviderWorld:
        """A second provider on the same engine and node, as after a restart of vnode: it adopts what runs. The
        caller stops this world's task first if the restart should be a real one, and the new one's at the end."""
        return ProviderWorld.start(self.settings, self.node, self.docker)

    def latest(self, ref: PodRef) -> PodStatusUpdate | None:
        return next((u for u in reversed(self.updates) if u.ref.uid == ref.uid), None)

    async def until(self, ref: PodRef, check: Callable[[PodStatusUpdate], bool], what: str) -> PodStatusUpdate:
        async def probe() -> PodStatusUpdate | None:
            update = self.latest(ref)
            return update if update is not None and check(update) else None
        found = await eventually(probe, timeout_seconds=WAIT_SECONDS, what=what)
        assert found is not None
        return found

    def events(self, ref: PodRef) -> list[tuple[str, str, str]]:
        return [(e.type, e.reason, e.message) for u in self.updates if u.ref.uid == ref.uid for e in u.events]

    async def containers(self, ref: PodRef) -> list[Any]:
        return list(await self.docker.containers.list(all=True, filters=naming.pod_filter(self.node, ref.uid)))


@contextlib.asynccontextmanager
async def provider_world(tmp: Path, **overrides: Any) -> AsyncIterator[ProviderWorld]:
    settings = DockerProviderSettings(**docker_provider_settings(tmp, **overrides))
    node = f"test-{uuid.uuid4().hex[:8]}"
    async with aiodocker.Docker(url=settings.host) as docker:
        world = ProviderWorld.start(settings, node, docker)
        try:
            yield world
        finally:
            await stopped(world.task)
            await remove_node_containers(settings.host, node)
            shutil.rmtree(settings.volumes_dir, ignore_errors=True)
