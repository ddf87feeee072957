"""Helpers for tests that run real containers: the engine tests/tools/docker-env.sh provides, its test images, a
client, and the containers a test's virtual node left behind.

The engine, its images and its network mode come from the environment `make test` sets up; this module never starts,
stops or reconfigures an engine, and removes only containers a test created.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import aiodocker
import pytest
from aiodocker.containers import DockerContainer

from vnode.providers.docker.naming import LABEL_NODE


def _missing(reason: str) -> NoReturn:
    """Under CI a missing engine fails the test; locally it skips it with the reason."""
    if os.environ.get("CI"):
        pytest.fail(f"no Docker engine for the Docker tests: {reason}")
    pytest.skip(reason)


def docker_host() -> str:
    """The engine's address (DOCKER_HOST as tests/tools/test-env.sh exports it)."""
    reason = os.environ.get("VNODE_TEST_DOCKER_UNAVAILABLE")
    if reason:
        _missing(reason)
    host = os.environ.get("DOCKER_HOST")
    if not host:
        _missing("DOCKER_HOST is not set: run the tests through `make test` (tests/tools/test-env.sh starts an engine)")
    return host


@dataclass(frozen=True)
class Images:
    pause: str  # busybox; its default command sleeps until SIGTERM, then exits 0 at once
    tools: str  # busybox with every applet (and nohup), /etc/passwd with root and jenkins (1000), /home/jenkins/agent


def test_images() -> Images:
    """The offline test images docker-env.sh built in the engine."""
    docker_host()
    return Images(pause=os.environ.get("VNODE_TEST_PAUSE_IMAGE", "vnode-test/pause:1"),
                  tools=os.environ.get("VNODE_TEST_TOOLS_IMAGE", "vnode-test/tools:1"))


test_images.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test, wherever it is imported


def sandbox_network() -> str:
    """NetworkMode for a pod's sandbox container: `none` on the private engine (it has no bridge), else `bridge`."""
    docker_host()
    return os.environ.get("VNODE_TEST_DOCKER_NETWORK", "none")


@contextlib.asynccontextmanager
async def docker_client() -> AsyncIterator[aiodocker.Docker]:
    """A client of the test engine, closed on exit."""
    async with aiodocker.Docker(url=docker_host()) as docker:
        yield docker


@contextlib.asynccontextmanager
async def started_container(docker: aiodocker.Docker, config: dict[str, Any],
                            name: str | None = None) -> AsyncIterator[DockerContainer]:
    """Create and start a container; on exit it is removed (killed first if running) whatever happened."""
    container = await docker.containers.create(config, name=name)
    try:
        await container.start()
        yield container
    finally:
        await container.delete(force=True, v=True)


async def leftovers(docker: aiodocker.Docker, node_prefix: str = "") -> list[dict[str, Any]]:
    """Summaries (`GET /containers/json?all=1`) of containers labelled with a virtual node, running or not; only nodes
    whose name starts with `node_prefix` when given. Tests name their nodes `test-...`, so each can check its own."""
    containers = await docker.containers.list(all=True, filters={"label": [LABEL_NODE]})
    summaries = [{key: container[key] for key in ("Id", "Names", "Labels", "State") if key in container}
                 for container in containers]
    return [s for s in summaries if (s.get("Labels") or {}).get(LABEL_NODE, "").startswith(node_prefix)]


def describe(summaries: list[dict[str, Any]]) -> str:
    """One line per container for an assertion message: name, node label and state."""
    return "; ".join(f"{','.join(s.get('Names') or [s.get('Id', '?')[:12]])} "
                     f"(node {(s.get('Labels') or {}).get(LABEL_NODE)}, {s.get('State')})" for s in summaries)
