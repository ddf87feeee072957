"""A pod's sandbox: the pause container whose network namespace (and /etc/hosts) the pod's other containers join.

`start_sandbox` gets the pause image (IfNotPresent, through `images.ImagePuller` and its backoff), then creates and
starts the container, retrying every engine refusal with the image pull backoff. Each failure is handed to the
caller in the kubelet's words, which it records as a `FailedCreatePodSandBox` Warning while the pod's containers stay
waiting ContainerCreating (they have no instance yet). Connection failures propagate: they are the engine's outage,
not the sandbox's. `create_container` (a create that replaces a leftover of an earlier try) is shared with the
runner. Must not push status or touch the pod's other containers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import aiodocker

from vnode.clock import Clock
from vnode.config import DockerProviderSettings
from vnode.providers.base import ResolvedPod
from vnode.providers.docker import naming, spec
from vnode.providers.docker.images import ImagePuller

Failed = Callable[[str], None]


async def start_sandbox(docker: aiodocker.Docker, images: ImagePuller, pod: ResolvedPod, *, node: str,
                        settings: DockerProviderSettings, clock: Clock, failed: Failed) -> Mapping[str, Any]:
    """The engine's inspect of the pod's started sandbox; until it starts, `failed(message)` per failed try."""
    image = settings.pause_image
    name = naming.container_name(node, naming.ContainerKey(pod.ref, "sandbox", "", 0))
    delay = settings.image_pull_backoff_seconds
    while True:
        # containerd's words for a sandbox image it cannot pull: `failed to get sandbox image "<image>": ...`.
        await images.ensure_sandbox(image, failed=lambda message: failed(
            f'failed to get sandbox image "{image}": {message}'))
        try:
            container = await create_container(docker, spec.sandbox_config(pod, node=node, settings=settings), name)
            await container.start()
            return await container.show()
        except aiodocker.DockerError as exc:
            failed(f"failed to start sandbox container for pod {pod.ref.name!r}: {exc.message}")
        await clock.sleep(delay)
        delay = min(delay * 2, settings.image_pull_backoff_max_seconds)


async def create_container(docker: aiodocker.Docker, config: Mapping[str, Any],
                           name: str) -> aiodocker.containers.DockerContainer:
    """Create `name`, replacing a leftover of an earlier try of the same step (names are per attempt). The leftover
    is looked for only when the engine reports the name taken (409), so a normal start costs one call."""
    try:
        return await docker.containers.create(dict(config), name=name)
    except aiodocker.DockerError as exc:
        if exc.status != 409:
            raise
    with contextlib.suppress(aiodocker.DockerError):
        await docker.containers.container(name).delete(force=True, v=True)
    return await docker.containers.create(dict(config), name=name)
