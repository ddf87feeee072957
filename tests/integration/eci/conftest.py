"""An ECI emulator on a free port, driven by a ManualClock, and a real aliyun-python-sdk client pointed at it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import RpcRequest

from tests.support.eci_emulator import serving
from vnode.clock import ManualClock, SystemClock
from vnode.config import EciEmulatorSettings, EciThrottleSettings
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.credentials import Credentials, StaticCredentials
from vnode.providers.eci.quota import RetryPolicy
from vnode.sandbox.eci.server import EciEmulator

ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION = "test-key", "test-secret", "cn-hangzhou"


class Sdk:
    """The real SDK, called from a worker thread (it blocks), with the emulator's endpoint on every request."""

    def __init__(self, endpoint: str, secret: str = ACCESS_KEY_SECRET, key_id: str = ACCESS_KEY_ID) -> None:
        self.endpoint = endpoint
        self.client = AcsClient(key_id, secret, REGION)

    async def call(self, request: RpcRequest) -> dict[str, Any]:
        # `set_endpoint` with a scheme wins over every resolver (no location-service lookup); the SDK's default
        # protocol is plain HTTP.
        request.set_endpoint(self.endpoint)
        body = await asyncio.to_thread(self.client.do_action_with_exception, request)
        answer: dict[str, Any] = json.loads(body)
        return answer

    def close(self) -> None:
        """Close the SDK's pooled keep-alive connections now, not whenever the client is collected."""
        self.client.session.close()

    def __enter__(self) -> Sdk:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture
def clock() -> ManualClock:
    # The SDK stamps requests with the real time; the emulator's clock starts there and moves only when told.
    return ManualClock(datetime.now(UTC))


@pytest.fixture
async def emulator(clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EciEmulator]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)  # the SDK honours proxies, even for 127.0.0.1
    settings = EciEmulatorSettings(
        port=0, access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET, region_id=REGION,
        throttles={"DescribeContainerGroupEvents": EciThrottleSettings(burst=2, per_second=0.001)})
    async with serving(settings, clock) as server:
        yield server


@pytest.fixture
def sdk(emulator: EciEmulator) -> Iterator[Sdk]:
    with Sdk(emulator.endpoint) as client:
        yield client


def eci_client(emulator: EciEmulator) -> EciClient:
    """vnode's client on the emulator, retrying in milliseconds (these tests are about the wire, not waiting)."""
    return EciClient(region_id=REGION, endpoint=emulator.endpoint, clock=SystemClock(),
                     credentials=StaticCredentials(Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)),
                     retry=RetryPolicy(max_attempts=2, base_seconds=0.001, throttled_base_seconds=0.001,
                                       cap_seconds=0.01))


@pytest.fixture
async def client(emulator: EciEmulator) -> AsyncIterator[EciClient]:
    """vnode's client on the shared emulator."""
    client = eci_client(emulator)
    try:
        yield client
    finally:
        await client.aclose()
