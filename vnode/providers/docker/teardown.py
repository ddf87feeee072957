"""Taking a pod off the engine: stop its containers as the kubelet does on delete, then remove them and its volumes.

Used by `PodRunner.terminate` (which reports the final statuses in between). App and init containers get SIGTERM and
SIGKILL after the grace period; the sandbox goes last, at once. It must not decide a pod's phase or push status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Literal

import aiodocker

from vnode.config import DockerProviderSettings
from vnode.providers.base import PodRef
from vnode.providers.docker import naming, volumes

EventSink = Callable[[Literal["Normal", "Warning"], str, str], None]


async def stop_pod(docker: aiodocker.Docker, *, node: str, ref: PodRef, grace_period_seconds: int,
                   event: EventSink) -> list[Any]:
    """Stop every running container of the pod (a `Killing` Event each); returns the summaries found."""
    summaries = list(await docker.containers.list(all=True, filters=naming.pod_filter(node, ref.uid)))
    stops = []
    for container in summaries:
        key = naming.key_of(container["Labels"] or {})
        if container["State"] == "running" and key is not None:
            if key.role != "sandbox":
                event("Normal", "Killing", f"Stopping container {key.container}")
            stops.append((key.role, container))
    await asyncio.gather(*(c.stop(t=grace_period_seconds) for role, c in stops if role != "sandbox"),
                         return_exceptions=True)
    await asyncio.gather(*(c.stop(t=0) for role, c in stops if role == "sandbox"), return_exceptions=True)
    return summaries


async def remove_pod(docker: aiodocker.Docker, *, node: str, ref: PodRef, summaries: Sequence[Any],
                     settings: DockerProviderSettings, forget: Callable[[str], None]) -> None:
    """Remove the pod's containers (`forget` each one's exit signal) and its volume directories."""
    for container in summaries:
        await remove_container(docker, container.id, forget)
    # A create that was in flight when the pod's task was cancelled may land after the first listing.
    for container in await docker.containers.list(all=True, filters=naming.pod_filter(node, ref.uid)):
        await remove_container(docker, container.id, forget)
    await asyncio.to_thread(volumes.remove, settings, ref.uid)


async def remove_container(docker: aiodocker.Docker, container_id: str, forget: Callable[[str], None]) -> None:
    forget(container_id)
    with contextlib.suppress(aiodocker.DockerError):
        await docker.containers.container(container_id).delete(force=True, v=True)
