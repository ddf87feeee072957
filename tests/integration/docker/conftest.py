"""Fixtures for tests against the real Docker engine of tests/tools/docker-env.sh: a client, the test images, and a
per-test node name whose containers must all be gone when the test ends.

The event loop is per test, so the engine client is too; nothing here is session-scoped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

import aiodocker
import pytest

from tests.support.docker import Images, describe, docker_client, leftovers, test_images


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    """A client of the test engine (skips locally, fails under CI, when there is none)."""
    async with docker_client() as client:
        yield client


@pytest.fixture
def images() -> Images:
    return test_images()


@pytest.fixture
def node_name(request: pytest.FixtureRequest) -> str:
    """A virtual node name unique to this test run: `test-<test name>-<random>`, a valid DNS label."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower().removeprefix("test_")).strip("-")
    return f"test-{stem[:44].rstrip('-')}-{secrets.token_hex(3)}"


@pytest.fixture
async def no_leftovers(docker: aiodocker.Docker, node_name: str) -> AsyncIterator[str]:
    """The test's node name; after the test, fails it if any container labelled with that node remains (removing
    them first, so one failure does not leak into later runs against the same engine)."""
    yield node_name
    left = await leftovers(docker, node_name)
    for summary in left:
        await docker.containers.container(summary["Id"]).delete(force=True, v=True)
    if left:
        pytest.fail(f"the test left containers of node {node_name}: {describe(left)}")
