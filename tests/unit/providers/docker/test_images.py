"""images.py: which imagePullSecrets credential a pull carries. The test engine has no registry (the suite runs
offline), so these check what reaches aiodocker's `images.pull` through a stand-in for its images API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import aiodocker
import pytest

from vnode.clock import ManualClock
from vnode.config import DockerProviderSettings
from vnode.providers.base import RegistryAuth
from vnode.providers.docker.images import ImagePuller

AUTHS = (RegistryAuth("registry.example.com:5000", "robot", "s3cret"),
         RegistryAuth("https://index.docker.io/v1/", "hubuser", "hubpass"))


class FakeImages:
    def __init__(self) -> None:
        self.pulls: list[tuple[str, Any]] = []

    async def pull(self, from_image: str, *, auth: Any = None) -> None:
        self.pulls.append((from_image, auth))


class FakeDocker:
    def __init__(self) -> None:
        self.images = FakeImages()


def _puller(docker: FakeDocker) -> ImagePuller:
    return ImagePuller(cast(aiodocker.Docker, docker), settings=DockerProviderSettings(volumes_dir=Path("/v")),
                       clock=ManualClock(), auths=AUTHS, event=lambda *_: None, push=lambda: None)


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
