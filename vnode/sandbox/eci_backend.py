"""`vnode sandbox --provider eci`: the ECI emulator in-process, and the node's eci provider pointed at it.

Owns the emulator's task for the sandbox's lifetime and the credential files the provider reads (the same
mounted-directory path a real deployment uses, so no process environment is touched). The runtime is `docker` when
a Docker engine answers, `sim` otherwise. It must not know about the API server or the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from vnode.clock import Clock
from vnode.config import EciEmulatorSettings, EciProviderSettings, VnodeSettings
from vnode.providers.eci.credentials import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from vnode.sandbox.eci.docker_runtime import docker_engine_reachable
from vnode.sandbox.eci.server import EciEmulator

log = logging.getLogger(__name__)
STOP_TIMEOUT_SECONDS = 15.0  # the docker runtime drains in-flight steps, then removes its containers
Runtime = Literal["sim", "docker"]


@dataclass(frozen=True)
class SandboxEci:
    settings: VnodeSettings  # the node's settings, provider pointed at the emulator
    emulator: EciEmulator


async def emulator_settings(settings: VnodeSettings, runtime: Runtime | None = None) -> EciEmulatorSettings:
    """The emulator of this sandbox: a free port, the provider's region, and the given runtime, else docker when
    an engine answers and sim otherwise."""
    provider = settings.provider
    assert isinstance(provider, EciProviderSettings)
    emulator = settings.eci_emulator
    if runtime is None:
        runtime = "docker" if await docker_engine_reachable(emulator.docker) else "sim"
    # Containers are labelled with the virtual node's name, as the Docker provider labels its own.
    return emulator.model_copy(update={"port": 0, "region_id": provider.region_id, "runtime": runtime,
                                       "docker_node_name": settings.node.name})


def write_credentials(settings: VnodeSettings, emulator: EciEmulatorSettings) -> VnodeSettings:
    """Write the emulator's AccessKey as files the provider reads (mode 0600) and point the provider at them."""
    directory = (settings.sandbox.state_dir / "eci-credentials").resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, value in ((ACCESS_KEY_ID, emulator.access_key_id),
                        (ACCESS_KEY_SECRET, emulator.access_key_secret.get_secret_value())):
        path = directory / name
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(value, encoding="utf-8")
    provider = settings.provider
    assert isinstance(provider, EciProviderSettings)
    return settings.model_copy(update={"provider": provider.model_copy(update={"credentials_dir": directory})})


@contextlib.asynccontextmanager
async def sandbox_eci(settings: VnodeSettings, clock: Clock, *,
                      runtime: Runtime | None = None) -> AsyncIterator[SandboxEci]:
    """Run the emulator until the block ends; yield the node's settings aimed at it."""
    emulator_config = await emulator_settings(settings, runtime)
    emulator = EciEmulator(emulator_config, clock)
    serving = asyncio.create_task(emulator.run(), name="sandbox eci emulator")
    ready = asyncio.create_task(emulator.ready.wait(), name="sandbox eci emulator ready wait")
    try:
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # startup failed: raise its error
        node_settings = write_credentials(settings, emulator_config)
        provider = node_settings.provider
        assert isinstance(provider, EciProviderSettings)
        node_settings = node_settings.model_copy(update={
            "provider": provider.model_copy(update={"endpoint": emulator.endpoint})})
        log.info("ECI emulator (%s runtime) at %s", emulator_config.runtime, emulator.endpoint)
        yield SandboxEci(node_settings, emulator)
    finally:
        for task in (ready, serving):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(ready, serving, return_exceptions=True), STOP_TIMEOUT_SECONDS)
