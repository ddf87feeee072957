"""The price arithmetic behind DescribeContainerGroupPrice, and the handler's checks of its parameters."""

from __future__ import annotations

import pytest

from vnode.config import EciInstanceTypePrice, EciPriceTable, EciRegionPrices
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.pricing import EciPricing, instance_quote, shape_quote, spot_hourly, spot_types

RATES = EciRegionPrices()


def pricing(table: EciPriceTable | None = None) -> EciPricing:
    return EciPricing(table or EciPriceTable(), region_id="cn-hangzhou", zone_id="cn-hangzhou-h")


def test_two_vcpu_four_gib_costs_the_docs_example_per_second() -> None:
    quote = shape_quote(RATES, cpu=2, memory=4)
    # ECI's API reference: 2 vCPU / 4 GiB in cn-hangzhou = 0.00012252 CNY (cpu detail 0.000098).
    assert round(quote.total, 8) == 0.00012252
    assert dict(quote.details)["cpu"] == pytest.approx(0.000098)


def test_economy_lowers_only_the_vcpu_rate() -> None:
    general, economy = shape_quote(RATES, cpu=2, memory=4), shape_quote(RATES, cpu=2, memory=4, economy=True)
    assert dict(economy.details)["cpu"] == pytest.approx(2 * 0.000027)
    assert dict(economy.details)["memory"] == dict(general.details)["memory"]


def test_instance_type_is_its_hourly_price_per_second() -> None:
    quote = instance_quote(RATES, "ecs.c5.large")
    [(resource, price)] = quote.details
    assert resource == "instance_type" and price == pytest.approx(0.622 / 3600)


def test_only_storage_beyond_the_free_30_gib_is_priced() -> None:
    assert shape_quote(RATES, cpu=1, memory=2, ephemeral_storage_gib=30).details == shape_quote(
        RATES, cpu=1, memory=2).details
    extra = dict(shape_quote(RATES, cpu=1, memory=2, ephemeral_storage_gib=50).details)["ephemeral_storage"]
    assert extra == pytest.approx(20 * RATES.ephemeral_storage_gib_second)


def test_spot_price_is_hourly_with_three_decimals() -> None:
    assert spot_hourly(RATES, "ecs.c5.large") == (0.062, 0.622)


def test_spot_candidates_share_the_shape_cheapest_first_and_skip_gpu_types() -> None:
    assert spot_types(RATES, cpu=2, memory=4) == ["ecs.c6.large", "ecs.c5.large"]
    assert spot_types(RATES, cpu=4, memory=15) == []  # only a GPU type has that shape


def test_spot_for_a_shape_no_instance_type_has_is_refused() -> None:
    with pytest.raises(EciApiError) as caught:
        pricing().describe_container_group_price({"Cpu": "3", "Memory": "5", "SpotStrategy": "SpotAsPriceGo"})
    assert caught.value.code == "InvalidSpotCpuMemorySpec"


def test_price_limit_strategy_needs_a_limit() -> None:
    with pytest.raises(EciApiError) as caught:
        pricing().describe_container_group_price({"InstanceType": "ecs.c5.large",
                                                  "SpotStrategy": "SpotWithPriceLimit"})
    assert (caught.value.code, caught.value.http_status) == ("MissingParameter", 400)


def test_unpriced_instance_type_is_invalid() -> None:
    with pytest.raises(EciApiError, match="InstanceType"):
        pricing().describe_container_group_price({"InstanceType": "ecs.unknown.large"})


def test_a_region_of_its_own_uses_its_own_table() -> None:
    table = EciPriceTable(currency="USD", regions={"cn-hangzhou": EciRegionPrices(
        vcpu_second=0.0000077, gib_second=0.00000096,
        instance_types={"ecs.c5.large": EciInstanceTypePrice(cpu=2, memory=4, hourly=0.09)})})
    price = pricing(table).describe_container_group_price({"Cpu": "1", "Memory": "2"})["PriceInfo"]["Price"]
    assert price["Currency"] == "USD" and price["TradePrice"] == round(0.0000077 + 2 * 0.00000096, 8)
