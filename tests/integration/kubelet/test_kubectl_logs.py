"""`kubectl logs` with every option, through the sandbox API server to vnode's kubelet API (mock provider)."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.support.kubelet_world import WAIT, KubeletWorld

pytestmark = pytest.mark.kubectl
VERSIONS = ["1.27", "1.29", "1.31", "1.33"]
LINES = ["first line", "second line", "third line"]
TIMESTAMPED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z (.*)$")


def logging_container(**env: str) -> dict[str, object]:
    values = {"VNODE_MOCK_LOG": "\n".join(LINES), **env}
    return {"name": "main", "image": "busybox", "env": [{"name": k, "value": v} for k, v in values.items()]}


@pytest.mark.parametrize("version", VERSIONS)
async def test_logs_whole_tail_and_limit(world: KubeletWorld, version: str) -> None:
    await world.create_pod("talker", containers=[logging_container()])
    kubectl = world.kubectl(version)
    assert (await kubectl.run("logs", "talker")).stdout.splitlines() == LINES
    assert (await kubectl.run("logs", "talker", "--tail=1")).stdout.splitlines() == LINES[-1:]
    assert (await kubectl.run("logs", "talker", "--limit-bytes=5")).stdout == "first"


@pytest.mark.parametrize("version", VERSIONS)
async def test_logs_since_and_timestamps(world: KubeletWorld, version: str) -> None:
    await world.create_pod("talker", containers=[logging_container()])
    kubectl = world.kubectl(version)
    assert (await kubectl.run("logs", "talker", "--since=1h")).stdout.splitlines() == LINES
    assert (await kubectl.run("logs", "talker", "--since-time=2099-01-01T00:00:00Z")).stdout == ""
    stamped = (await kubectl.run("logs", "talker", "--timestamps")).stdout.splitlines()
    matches = [TIMESTAMPED.match(line) for line in stamped]
    assert all(matches), stamped
    assert [m.group(2) for m in matches if m] == LINES


@pytest.mark.parametrize("version", VERSIONS)
async def test_logs_previous_instance(world: KubeletWorld, version: str) -> None:
    await world.create_pod("restarter", containers=[logging_container(VNODE_MOCK_RUN_SECONDS="0.3")])
    kubectl = world.kubectl(version)
    await world.wait_pod("restarter", lambda pod: pod["status"]["containerStatuses"][0]["restartCount"] >= 1,
                         "restarted")
    assert (await kubectl.run("logs", "restarter", "-p")).stdout.splitlines()[:3] == LINES


async def test_logs_previous_without_a_restart_is_an_error(world: KubeletWorld) -> None:
    await world.create_pod("talker", containers=[logging_container()])
    result = await world.kubectl().run("logs", "talker", "-p", check=False)
    assert result.returncode != 0
    assert "previous terminated container" in result.stderr or "not found" in result.stderr, result.stderr


async def test_logs_of_an_unknown_container_is_not_found(world: KubeletWorld) -> None:
    await world.create_pod("talker", containers=[logging_container()])
    result = await world.kubectl().run("logs", "talker", "-c", "nosuch", check=False)
    assert result.returncode != 0
    assert "nosuch" in result.stderr


@pytest.mark.parametrize("version", VERSIONS)
async def test_logs_follow_sees_new_lines_while_running(world: KubeletWorld, version: str) -> None:
    await world.create_pod("ticker", containers=[logging_container(VNODE_MOCK_LOG_EVERY_SECONDS="0.1")])
    process = await world.kubectl(version).start("logs", "-f", "ticker")
    try:
        assert process.stdout is not None
        seen: list[str] = []
        async with asyncio.timeout(WAIT):
            while "tick 3" not in seen:
                line = await process.stdout.readline()
                assert line, f"kubectl logs -f ended early after {seen}"
                seen.append(line.decode().rstrip("\n"))
        assert seen[:3] == LINES
        assert process.returncode is None  # still following
    finally:
        process.terminate()
        await process.wait()
