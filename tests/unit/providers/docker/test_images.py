"""images.py: which imagePullSecrets credential a pull carries. The test engine has no registry (the suite runs
offline), so these check what reaches aiodocker's `images.pull` through a stand-in for its images API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import aiodocker
import pytest

from tests.support.wait import eventually
from vnode.clock import ManualClock
from vnode.config import DockerProviderSettings
from vnode.providers.base import RegistryAuth
from vnode.providers.docker.images import ImagePuller

AUTHS = (RegistryAuth("registry.example.com:5000", "robot", "s3cret"),
         RegistryAuth("https://index.docker.io/v1/", "hubuser", "hubpass"))


class FakeImages:
    def __init__(self, failures: int = 0) -> None:
        self.pulls: list[tuple[str, Any]] = []
        self.failures = failures  # how many pulls fail before one succeeds
        self.present: set[str] = set()

    async def pull(self, from_image: str, *, auth: Any = None) -> None:
        self.pulls.append((from_image, auth))
        if self.failures:
            self.failures -= 1
            raise aiodocker.DockerError(500, "dial tcp: lookup registry.example.com: no such host")
        self.present.add(from_image)

    async def inspect(self, name: str) -> dict[str, Any]:
        if name not in self.present:
            raise aiodocker.DockerError(404, f"No such image: {name}")
        return {"Id": name}


class FakeDocker:
    def __init__(self, failures: int = 0) -> None:
        self.images = FakeImages(failures)


def _puller(docker: FakeDocker, clock: ManualClock | None = None,
            events: list[tuple[str, str, str]] | None = None) -> ImagePuller:
    def event(kind: str, reason: str, message: str) -> None:
        if events is not None:
            events.append((kind, reason, message))
    settings = DockerProviderSettings(volumes_dir=Path("/v"), image_pull_backoff_seconds=1,
                                      image_pull_backoff_max_seconds=3)
    return ImagePuller(cast(aiodocker.Docker, docker), settings=settings, clock=clock or ManualClock(), auths=AUTHS,
                       event=event, push=lambda: None)


async def test_a_private_registry_image_is_pulled_with_that_registrys_credential() -> None:
    docker = FakeDocker()
    await _puller(docker).pull("registry.example.com:5000/team/app:1")
    assert docker.images.pulls == [("registry.example.com:5000/team/app:1", {
        "username": "robot", "password": "s3cret", "serveraddress": "registry.example.com:5000"})]


@pytest.mark.parametrize(("image", "reference"), [
    ("busybox:1", "docker.io/library/busybox:1"), ("team/app:2", "docker.io/team/app:2")])
async def test_a_docker_hub_image_is_named_in_full_and_carries_the_hub_credential(image: str,
                                                                                  reference: str) -> None:
    docker = FakeDocker()
    await _puller(docker).pull(image)
    assert docker.images.pulls == [(reference, {"username": "hubuser", "password": "hubpass",
                                                "serveraddress": "docker.io"})]


async def test_an_image_of_a_registry_without_a_credential_is_pulled_anonymously() -> None:
    docker = FakeDocker()
    await _puller(docker).pull("quay.io/other/app:3")
    assert docker.images.pulls == [("quay.io/other/app:3", None)]


def test_the_credential_never_shows_in_a_repr() -> None:
    assert "s3cret" not in repr(AUTHS)


async def test_a_failing_sandbox_image_pull_is_reported_and_retried_with_the_doubling_backoff() -> None:
    docker, clock = FakeDocker(failures=3), ManualClock()
    failures: list[tuple[float, str]] = []
    events: list[tuple[str, str, str]] = []
    image = "registry.example.com/pause:3.9"
    task = asyncio.create_task(_puller(docker, clock, events).ensure_sandbox(
        image, failed=lambda message: failures.append((clock.monotonic(), message))), name="sandbox image")
    try:
        for count, wait in ((1, 1.0), (2, 2.0), (3, 3.0)):
            async def reported(count: int = count) -> bool:
                return len(failures) == count
            await eventually(reported, what=f"failure {count}")
            await clock.advance(wait)
        await asyncio.wait_for(task, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [at for at, _ in failures] == [0.0, 1.0, 3.0]  # retried after 1 s, then 2 s (the backoff doubles)
    assert failures[0][1] == (f'failed to pull image "{image}": '
                              "dial tcp: lookup registry.example.com: no such host")
    assert len(docker.images.pulls) == 4 and events == []  # the kubelet records no pull Events for it
