"""DescribeContainerGroupPrice through the real SDK: per-second prices for a shape or a type, hourly spot prices."""

from __future__ import annotations

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeci.request.v20180808.DescribeContainerGroupPriceRequest import DescribeContainerGroupPriceRequest

from tests.integration.eci.conftest import Sdk


def price_request(*, cpu: float | None = None, memory: float | None = None, instance_type: str | None = None,
                  spot: str | None = None) -> DescribeContainerGroupPriceRequest:
    request = DescribeContainerGroupPriceRequest()
    if cpu is not None:
        request.set_Cpu(cpu)
    if memory is not None:
        request.set_Memory(memory)
    if instance_type is not None:
        request.set_InstanceType(instance_type)
    if spot is not None:
        request.set_SpotStrategy(spot)
    return request


async def test_vcpu_memory_price_matches_the_docs_example(sdk: Sdk) -> None:
    price = (await sdk.call(price_request(cpu=2, memory=4)))["PriceInfo"]["Price"]
    assert (price["Currency"], price["OriginalPrice"], price["DiscountPrice"], price["TradePrice"]) == (
        "CNY", 0.00012252, 0.0, 0.00012252)
    details = {d["Resource"]: d["TradePrice"] for d in price["DetailInfos"]["DetailInfo"]}
    assert details == {"cpu": 0.000098, "memory": 0.00002452}


async def test_instance_type_wins_over_cpu_and_memory(sdk: Sdk) -> None:
    info = (await sdk.call(price_request(cpu=8, memory=16, instance_type="ecs.c5.large")))["PriceInfo"]
    details = info["Price"]["DetailInfos"]["DetailInfo"]
    assert [d["Resource"] for d in details] == ["instance_type"]
    assert info["Price"]["TradePrice"] == round(0.622 / 3600, 8)
    assert info["SpotPrices"]["SpotPrice"] == []  # not asked for spot


async def test_spot_lists_hourly_market_prices_of_the_shapes_types(sdk: Sdk) -> None:
    info = (await sdk.call(price_request(cpu=2, memory=4, spot="SpotAsPriceGo")))["PriceInfo"]
    spots = {s["InstanceType"]: (s["SpotPrice"], s["OriginPrice"], s["ZoneId"])
             for s in info["SpotPrices"]["SpotPrice"]}
    assert spots["ecs.c5.large"] == (0.062, 0.622, "cn-hangzhou-h")
    assert all(spot < origin for spot, origin, _ in spots.values())
    assert info["Price"]["TradePrice"] == 0.00012252  # Price stays pay-as-you-go


async def test_spot_for_an_odd_shape_is_refused(sdk: Sdk) -> None:
    with pytest.raises(ServerException) as caught:
        await sdk.call(price_request(cpu=3, memory=5, spot="SpotAsPriceGo"))
    assert (caught.value.get_error_code(), caught.value.get_http_status()) == ("InvalidSpotCpuMemorySpec", 400)
