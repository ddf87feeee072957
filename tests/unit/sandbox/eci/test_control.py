"""Throttling buckets, injected faults and the request log's redaction."""

from __future__ import annotations

import pytest

from vnode.clock import ManualClock
from vnode.config import EciThrottleSettings
from vnode.sandbox.eci.control import FaultInjector, Throttler, loggable
from vnode.sandbox.eci.errors import EciApiError


async def test_bucket_empties_then_refills() -> None:
    clock = ManualClock()
    throttler = Throttler({"CreateContainerGroup": EciThrottleSettings(burst=2, per_second=1)}, clock)
    throttler.check("CreateContainerGroup")
    throttler.check("CreateContainerGroup")
    with pytest.raises(EciApiError) as caught:
        throttler.check("CreateContainerGroup")
    assert (caught.value.code, caught.value.http_status) == ("Throttling", 400)
    await clock.advance(1)
    throttler.check("CreateContainerGroup")


def test_unlisted_action_is_not_throttled() -> None:
    throttler = Throttler({}, ManualClock())
    for _ in range(1000):
        throttler.check("DescribeContainerGroups")


def test_fault_fires_the_given_number_of_times() -> None:
    faults = FaultInjector()
    faults.inject("CreateContainerGroup", "ServiceUnavailable", times=2)
    for _ in range(2):
        with pytest.raises(EciApiError) as caught:
            faults.check("CreateContainerGroup")
        assert caught.value.http_status == 503
    faults.check("CreateContainerGroup")


def test_wildcard_fault_hits_any_action() -> None:
    faults = FaultInjector()
    faults.inject("*", "InternalError")
    with pytest.raises(EciApiError, match="InternalError"):
        faults.check("DescribeContainerGroups")


def test_log_drops_signatures_and_passwords() -> None:
    kept = loggable({"Action": "X", "Signature": "sig", "ImageRegistryCredential.1.Password": "pw"})
    assert kept == {"Action": "X"}
