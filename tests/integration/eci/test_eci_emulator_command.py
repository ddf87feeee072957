"""`vnode eci-emulator` as a user runs it: a ready line naming the endpoint, the real SDK served, a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import pytest
from aliyunsdkeci.request.v20180808.DescribeContainerGroupsRequest import DescribeContainerGroupsRequest

from tests.integration.eci.conftest import Sdk
from tests.support.docker import docker_host


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}


async def test_ready_line_then_sdk_calls_then_sigterm_exits_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "eci-emulator", "--port", "0", "--access-key-id", "cli-key",
        "--access-key-secret", "cli-secret", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=_env())
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("vnode eci-emulator ready: endpoint=http://127.0.0.1:"), line
        endpoint = line.split("endpoint=")[1].split()[0]
        assert line.split("region=")[1].strip() == "cn-hangzhou"
        with Sdk(endpoint, secret="cli-secret", key_id="cli-key") as sdk:
            answer = await sdk.call(DescribeContainerGroupsRequest())
        assert answer["TotalCount"] == 0
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_docker_runtime_prints_its_ready_line() -> None:
    env = {**_env(), "VNODE_ECI_EMULATOR__DOCKER__HOST": docker_host()}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnode", "eci-emulator", "--port", "0", "--runtime", "docker",
        "--docker-node-name", f"test-{uuid.uuid4().hex[:8]}", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env)
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("vnode eci-emulator ready: endpoint=http://127.0.0.1:"), line
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
