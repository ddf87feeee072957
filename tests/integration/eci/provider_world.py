"""EciProvider driven directly against an in-process ECI emulator (sim runtime, real time, short timings) through
the real SDK: it records every status update the provider pushes, and the emulator's store and request log show
what crossed the wire."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from tests.support.running import stopped
from tests.support.wait import eventually
from vnode.clock import Clock, SystemClock
from vnode.config import EciEmulatorSettings, EciProviderSettings
from vnode.providers.base import EnvVar, PodRef, PodStatusUpdate, ResolvedPod
from vnode.providers.eci.credentials import ACCESS_KEY_ID as KEY_ID_NAME
from vnode.providers.eci.credentials import ACCESS_KEY_SECRET as SECRET_NAME
from vnode.providers.eci.provider import EciProvider
from vnode.providers.eci.translate import TAG_UID
from vnode.sandbox.eci.model import ContainerGroup
from vnode.sandbox.eci.server import EciEmulator

WAIT_SECONDS = 15.0
FAST_PROVIDER = {"status_poll_seconds": 0.1, "full_resync_seconds": 0.5, "events_poll_seconds": 0.2,
                 "log_poll_seconds": 0.2, "orphan_sweep_seconds": 0.3, "max_attempts": 3,
                 "security_group_id": "sg-test", "vswitch_ids": ("vsw-test",)}
FAST_EMULATOR = {"scheduling_seconds": 0.2, "pending_seconds": 0.3, "restart_seconds": 0.2}


def pod(name: str, *, env: Mapping[str, str] | None = None, restart_policy: str = "Never",
        annotations: Mapping[str, str] | None = None, uid: str | None = None) -> ResolvedPod:
    """A one-container pod whose sim outcome the env decides (VNODE_SIM_RUN_SECONDS, VNODE_SIM_EXIT_CODE)."""
    ref = PodRef("default", name, uid or str(uuid.uuid4()))
    body = {"metadata": {"namespace": ref.namespace, "name": name, "uid": ref.uid,
                         "annotations": dict(annotations or {})},
            "spec": {"restartPolicy": restart_policy, "containers": [{"name": "main", "image": "busybox:1.36"}]}}
    variables = tuple(EnvVar(k, v) for k, v in (env or {}).items())
    return ResolvedPod(ref, body, env={"main": variables})


@dataclass
class EciProviderWorld:
    emulator: EciEmulator
    settings: EciProviderSettings
    node: str
    provider: EciProvider
    task: asyncio.Task[None]  # the provider's `run`
    emulator_task: asyncio.Task[None]
    updates: list[PodStatusUpdate] = field(default_factory=list)

    @classmethod
    def start(cls, emulator: EciEmulator, settings: EciProviderSettings, node: str, *,
              emulator_task: asyncio.Task[None], clock: Clock | None = None) -> EciProviderWorld:
        provider = EciProvider(settings, clock or SystemClock(), node_name=node)
        updates: list[PodStatusUpdate] = []
        task = asyncio.create_task(provider.run(updates.append), name=f"eci provider {node}")
        return cls(emulator, settings, node, provider, task, emulator_task, updates)

    def restarted(self) -> EciProviderWorld:
        """A new provider on the same emulator and node, as after a restart of vnode. The caller stops this one's
        task first if the restart should be a real one, and the new one's at the end."""
        return EciProviderWorld.start(self.emulator, self.settings, self.node, emulator_task=self.emulator_task)

    def latest(self, ref: PodRef) -> PodStatusUpdate | None:
        return next((u for u in reversed(self.updates) if u.ref.uid == ref.uid), None)

    async def until(self, ref: PodRef, check: Callable[[PodStatusUpdate], bool], what: str) -> PodStatusUpdate:
        async def probe() -> PodStatusUpdate | None:
            update = self.latest(ref)
            return update if update is not None and check(update) else None
        return await eventually(probe, timeout_seconds=WAIT_SECONDS, what=what)

    def events(self, ref: PodRef) -> list[tuple[str, str, str]]:
        return [(e.type, e.reason, e.message) for u in self.updates if u.ref.uid == ref.uid for e in u.events]

    def groups(self, uid: str) -> list[ContainerGroup]:
        """The emulator's groups for the pod with this UID."""
        return [g for g in self.emulator.store.select() if (TAG_UID, uid) in g.tags]


async def start_emulator(**overrides: Any) -> tuple[EciEmulator, asyncio.Task[None]]:
    settings = EciEmulatorSettings(port=0, access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET,
                                   region_id=REGION, **{**FAST_EMULATOR, **overrides})
    emulator = EciEmulator(settings, SystemClock())
    task = asyncio.create_task(emulator.run(), name="eci emulator")

    async def ready() -> bool:
        if task.done():
            task.result()  # startup failed: raise its error
        return emulator.ready.is_set()
    try:
        await eventually(ready, timeout_seconds=WAIT_SECONDS, what="the emulator")
    except BaseException:
        await stopped(task)
        raise
    return emulator, task


def provider_settings(tmp: Path, endpoint: str, **overrides: Any) -> EciProviderSettings:
    """Settings aimed at the emulator, with its AccessKey in files (the mounted-Secret path)."""
    directory = tmp / "eci-credentials"
    directory.mkdir(exist_ok=True)
    (directory / KEY_ID_NAME).write_text(ACCESS_KEY_ID)
    (directory / SECRET_NAME).write_text(ACCESS_KEY_SECRET)
    return EciProviderSettings(region_id=REGION, endpoint=endpoint, credentials_dir=directory, cluster_name="test",
                               **{**FAST_PROVIDER, **overrides})


@contextlib.asynccontextmanager
async def eci_provider_world(tmp: Path, monkeypatch: pytest.MonkeyPatch, *, emulator: Mapping[str, Any] | None = None,
                             clock: Clock | None = None, **overrides: Any) -> AsyncIterator[EciProviderWorld]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # the SDK honours proxies, even for 127.0.0.1
    running, serving = await start_emulator(**(emulator or {}))
    try:
        world = EciProviderWorld.start(running, provider_settings(tmp, running.endpoint, **overrides),
                                       f"test-{uuid.uuid4().hex[:8]}", clock=clock, emulator_task=serving)
        try:
            yield world
        finally:
            await stopped(world.task)
    finally:
        await stopped(serving)
