"""Getting a pod's images onto the engine as the kubelet does: imagePullPolicy, the pod's imagePullSecrets, and the
ErrImagePull → ImagePullBackOff cycle with its Events while a pull fails; the sandbox (pause) image with the same
backoff, its failures left to the caller to report.

An `ImagePuller` belongs to one `PodRunner` and reports through the runner's callbacks (an Event, a waiting state,
a push of the pod's status). It must never log or report a registry credential.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

import aiodocker

from vnode.clock import Clock
from vnode.config import DockerProviderSettings
from vnode.providers.base import ContainerState, RegistryAuth
from vnode.providers.registry import DOCKER_HUB, auth_for_image, image_registry

log = logging.getLogger(__name__)
EventSink = Callable[[Literal["Normal", "Warning"], str, str], None]
WaitingSink = Callable[[ContainerState], None]


class ImagePuller:
    def __init__(self, docker: aiodocker.Docker, *, settings: DockerProviderSettings, clock: Clock,
                 auths: Sequence[RegistryAuth], event: EventSink, push: Callable[[], None]) -> None:
        self._docker, self._settings, self._clock, self._auths = docker, settings, clock, tuple(auths)
        self._event, self._push = event, push

    async def ensure(self, image: str, policy: str, *, waiting: WaitingSink, first: bool) -> None:
        """Return once `image` is on the engine as `policy` wants it; until then report ErrImagePull (or
        ErrImageNeverPull) then ImagePullBackOff through `waiting`, retrying with the kubelet's doubling backoff.
        `first`: the container's first instance (only then is "already present" announced)."""
        delay = self._settings.image_pull_backoff_seconds
        while (failure := await self._obtain(image, policy, announce=True, first=first)) is not None:
            waiting(failure)
            self._push()
            await self._clock.sleep(self._settings.image_pull_backoff_seconds)
            message = f'Back-off pulling image "{image}"'
            waiting(ContainerState("waiting", reason="ImagePullBackOff", message=message))
            self._event("Normal", "BackOff", message)
            self._event("Warning", "Failed", "Error: ImagePullBackOff")
            self._push()
            await self._clock.sleep(delay)
            delay = self._next(delay)

    async def ensure_sandbox(self, image: str, *, failed: Callable[[str], None]) -> None:
        """Return once the sandbox (pause) image is on the engine, pulled IfNotPresent. The kubelet's runtime pulls
        it without Events of its own: each failure is handed to `failed` (its message) and the pull is retried
        with the same backoff as a container's image."""
        delay = self._settings.image_pull_backoff_seconds
        while (failure := await self._obtain(image, "IfNotPresent", announce=False, first=False)) is not None:
            failed(f'failed to pull image "{image}": {failure.message}')
            await self._clock.sleep(delay)
            delay = self._next(delay)

    async def _obtain(self, image: str, policy: str, *, announce: bool, first: bool) -> ContainerState | None:
        """One try at having `image` as `policy` wants it: None when it is there, else the waiting state saying
        why not. `announce`: the Pulling, Pulled and Failed Events the kubelet records for a container's image."""
        if await self.present(image) and policy != "Always":
            if announce and first:
                self._event("Normal", "Pulled", f'Container image "{image}" already present on machine')
            return None
        if policy == "Never":
            message = f'Container image "{image}" is not present with pull policy of Never'
            if announce:
                self._event("Warning", "ErrImageNeverPull", message)
            return ContainerState("waiting", reason="ErrImageNeverPull", message=message)
        if announce:
            self._event("Normal", "Pulling", f'Pulling image "{image}"')
            self._push()
        began = self._clock.monotonic()
        try:
            await self.pull(image)
        except aiodocker.DockerError as exc:
            if announce:
                self._event("Warning", "Failed", f'Failed to pull image "{image}": {exc.message}')
            return ContainerState("waiting", reason="ErrImagePull", message=exc.message)
        if announce:
            took = self._clock.monotonic() - began
            self._event("Normal", "Pulled", f'Successfully pulled image "{image}" in {took:.3f}s')
        return None

    def _next(self, delay: float) -> float:
        return min(delay * 2, self._settings.image_pull_backoff_max_seconds)

    async def pull(self, image: str) -> None:
        """Pull `image`, with the pod's credential for its registry when it has one."""
        auth = auth_for_image(image, self._auths)
        if auth is None:
            await self._docker.images.pull(image)
            return
        registry = image_registry(image)
        # aiodocker takes the auth's serveraddress from the reference's first component (and refuses a reference
        # without one): a Docker Hub image is named in full, which the engine stores under its short name.
        reference = image if registry != DOCKER_HUB or image.startswith(f"{DOCKER_HUB}/") else (
            f"{DOCKER_HUB}/{image if '/' in image else 'library/' + image}")
        log.debug("pulling %s with the pod's credential for %s", image, registry)
        await self._docker.images.pull(reference, auth={
            "username": auth.username, "password": auth.password, "serveraddress": registry})

    async def present(self, image: str) -> bool:
        try:
            await self._docker.images.inspect(image)
        except aiodocker.DockerError as exc:
            if exc.status == 404:
                return False
            raise
        return True
