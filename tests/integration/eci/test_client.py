"""`EciClient` against the running emulator: retries, idempotency tokens, error mapping, quotas, key rotation."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from tests.support.wait import eventually
from vnode.clock import Clock, ManualClock, SystemClock
from vnode.errors import ConfigError, InvalidPod, NotFound
from vnode.providers.eci import credentials as creds
from vnode.providers.eci.client import EciClient, error_code
from vnode.providers.eci.credentials import Credentials, FileCredentials, StaticCredentials
from vnode.providers.eci.quota import Quota, RetryPolicy
from vnode.sandbox.eci.server import EciEmulator
from vnode.sandbox.eci.signature import SignatureVerifier

ClientFactory = Callable[..., EciClient]
# Backoff in milliseconds: these tests are about what crosses the wire, not about how long the client waits.
FAST_RETRY = RetryPolicy(max_attempts=4, base_seconds=0.001, throttled_base_seconds=0.001, cap_seconds=0.01)


def group(name: str, **extra: Any) -> dict[str, Any]:
    return {"ContainerGroupName": name, "RestartPolicy": "Never",
            "Container": [{"Name": "main", "Image": "busybox", "Command": ["sleep", "30"]}], **extra}


@pytest.fixture
async def make_client(emulator: EciEmulator) -> AsyncIterator[ClientFactory]:
    clients: list[EciClient] = []

    def make(*, secret: str = ACCESS_KEY_SECRET, clock: Clock | None = None, **kwargs: Any) -> EciClient:
        kwargs.setdefault("credentials", StaticCredentials(Credentials(ACCESS_KEY_ID, secret)))
        kwargs.setdefault("retry", FAST_RETRY)
        client = EciClient(region_id=REGION, endpoint=emulator.endpoint, clock=clock or SystemClock(), **kwargs)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


async def test_create_retried_after_a_500_makes_one_group_with_one_token(
        make_client: ClientFactory, emulator: EciEmulator) -> None:
    emulator.inject("CreateContainerGroup", "InternalError")
    group_id = await make_client().create_container_group(group("build-1"))
    calls = emulator.calls("CreateContainerGroup")
    assert [c.http_status for c in calls] == [500, 200]
    tokens = {c.params["ClientToken"] for c in calls}
    assert len(tokens) == 1 and tokens != {""}
    assert len(emulator.store) == 1 and group_id.startswith("eci-")


async def test_throttling_twice_then_success(make_client: ClientFactory, emulator: EciEmulator) -> None:
    emulator.inject("DescribeContainerGroups", "Throttling", times=2)
    answer = await make_client().describe_container_groups(tags={"vnode.io/node": "vnode"})
    assert answer["ContainerGroups"] == []
    assert [c.code for c in emulator.calls("DescribeContainerGroups")] == ["Throttling", "Throttling", ""]


async def test_client_error_is_not_retried_and_maps_to_invalid_pod(
        make_client: ClientFactory, emulator: EciEmulator) -> None:
    params = group("build-1")
    del params["Container"][0]["Image"]
    with pytest.raises(InvalidPod, match="MissingParameter") as caught:
        await make_client().create_container_group(params)
    assert error_code(caught.value) == "MissingParameter"
    assert [c.code for c in emulator.calls("CreateContainerGroup")] == ["MissingParameter"]


async def test_unknown_group_maps_to_not_found(make_client: ClientFactory, emulator: EciEmulator) -> None:
    with pytest.raises(NotFound):
        await make_client().delete_container_group("eci-missing")
    assert len(emulator.calls("DeleteContainerGroup")) == 1


async def test_wrong_secret_is_a_config_error_naming_the_source_not_the_value(
        make_client: ClientFactory, emulator: EciEmulator) -> None:
    with pytest.raises(ConfigError) as caught:
        await make_client(secret="not-the-secret").describe_container_groups()
    message = str(caught.value)
    assert "InvalidAccessKeySecret" in message and "ALIBABA_CLOUD_ACCESS_KEY_SECRET" in message
    assert "not-the-secret" not in message
    assert len(emulator.calls("DescribeContainerGroups")) == 1


async def test_token_bucket_spaces_out_a_burst_of_creates(
        make_client: ClientFactory, emulator: EciEmulator, clock: ManualClock) -> None:
    client = make_client(clock=clock, quotas={"CreateContainerGroup": Quota(per_second=10.0, burst=5.0)})
    creates = asyncio.gather(*(client.create_container_group(group(f"build-{n}")) for n in range(30)))
    try:
        async def sent(count: int) -> bool:
            return len(emulator.calls("CreateContainerGroup")) == count

        await eventually(lambda: sent(5), what="the burst of 5")
        await clock.advance(1.0)  # 10 more tokens
        await eventually(lambda: sent(15), what="10 more after 1 s")
        await clock.advance(1.5)
        ids = await asyncio.wait_for(creates, timeout=10)
    finally:
        creates.cancel()
        await asyncio.gather(creates, return_exceptions=True)
    bucket = client.limiter.buckets["CreateContainerGroup"]
    assert bucket.waits == 25 and len(set(ids)) == 30 and len(emulator.store) == 30


async def test_rotated_credentials_file_is_used_by_the_next_call(
        make_client: ClientFactory, emulator: EciEmulator, clock: ManualClock, tmp_path: Path) -> None:
    def write(name: str, value: str) -> None:
        (tmp_path / f".{name}.new").write_text(value)
        os.replace(tmp_path / f".{name}.new", tmp_path / name)  # atomic, like a Secret volume update

    write(creds.ACCESS_KEY_ID, ACCESS_KEY_ID)
    write(creds.ACCESS_KEY_SECRET, ACCESS_KEY_SECRET)
    client = make_client(credentials=FileCredentials(tmp_path))
    await client.describe_container_groups()
    emulator.verifier = SignatureVerifier({"rotated-key": "rotated-secret"}, clock)
    write(creds.ACCESS_KEY_ID, "rotated-key")
    write(creds.ACCESS_KEY_SECRET, "rotated-secret")
    await client.describe_container_groups()
    calls = emulator.calls("DescribeContainerGroups")
    assert [(c.params["AccessKeyId"], c.code) for c in calls] == [(ACCESS_KEY_ID, ""), ("rotated-key", "")]


async def test_a_create_larger_than_a_url_travels_as_a_signed_form(
        make_client: ClientFactory, emulator: EciEmulator) -> None:
    # 24 KiB of base64 config file: within ECI's 32 KiB per file, far beyond what a request line carries.
    content = base64.b64encode(os.urandom(18 * 1024)).decode()
    volume = {"Name": "cfg", "Type": "ConfigFileVolume",
              "ConfigFileVolume": {"ConfigFileToPath": [{"Path": "big.bin", "Content": content}]}}
    await make_client().create_container_group(group("big-1", Volume=[volume]))
    [call] = emulator.calls("CreateContainerGroup")
    assert (call.method, call.http_status) == ("POST", 200)
    assert call.params["Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content"] == content
