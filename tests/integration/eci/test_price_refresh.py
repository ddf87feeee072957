"""The cost ledger's prices asked of ECI (vnode/cost/eci_prices.py): DescribeContainerGroupPrice through the real SDK
against the emulator, the quotes read into the price table, and a refusal that leaves the configured table alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from tests.integration.eci.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION
from vnode.clock import Clock, SystemClock
from vnode.config import CostSettings, EciPriceTable, EciProviderSettings
from vnode.cost.eci_prices import EciPriceRefresh
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.credentials import Credentials, StaticCredentials
from vnode.providers.eci.quota import RetryPolicy
from vnode.sandbox.eci.server import EciEmulator

# vnode's configured table, unlike what the emulator quotes (its defaults: 0.000049 and 0.00000613).
CONFIGURED = CostSettings.model_validate({"prices": {"default": {"vcpu_second": 0.00004, "gib_second": 0.000005}}})
FAST_RETRY = RetryPolicy(max_attempts=2, base_seconds=0.001, throttled_base_seconds=0.001, cap_seconds=0.01)
Factory = Callable[[EciProviderSettings, Clock], EciClient]


@pytest.fixture
async def clients(emulator: EciEmulator) -> AsyncIterator[list[EciClient]]:
    made: list[EciClient] = []
    yield made
    for client in made:
        await client.aclose()  # closing twice is harmless: the refresh closes each one it used


def factory(emulator: EciEmulator, made: list[EciClient]) -> Factory:
    def make(settings: EciProviderSettings, clock: Clock) -> EciClient:
        client = EciClient(region_id=settings.region_id, endpoint=emulator.endpoint, clock=SystemClock(),
                           credentials=StaticCredentials(Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)),
                           retry=FAST_RETRY)
        made.append(client)
        return client
    return make


def refresher(emulator: EciEmulator, made: list[EciClient], applied: list[EciPriceTable],
              cost: CostSettings = CONFIGURED) -> EciPriceRefresh:
    return EciPriceRefresh(EciProviderSettings(region_id=REGION), cost, SystemClock(), applied.append,
                           client_factory=factory(emulator, made))


async def test_prices_come_from_ecis_quotes(emulator: EciEmulator, clients: list[EciClient]) -> None:
    applied: list[EciPriceTable] = []
    assert await refresher(emulator, clients, applied).refresh()
    [table] = applied
    prices = table.for_region(REGION)
    assert (Decimal(str(prices.vcpu_second)), Decimal(str(prices.gib_second))) == (
        Decimal("0.000049"), Decimal("0.00000613"))
    # Each type's hourly price is its per-second quote (8 decimals, as ECI answers) × 3600.
    assert prices.instance_types["ecs.c5.large"].hourly == pytest.approx(round(0.622 / 3600, 8) * 3600)
    calls = emulator.calls("DescribeContainerGroupPrice")
    assert (calls[0].params["Cpu"], calls[0].params["Memory"]) == ("2", "4")
    assert sorted(c.params["InstanceType"] for c in calls[1:]) == sorted(prices.instance_types)
    assert all(c.http_status == 200 for c in calls)


async def test_a_refused_quote_keeps_the_configured_table(emulator: EciEmulator, clients: list[EciClient]) -> None:
    """A RAM policy without eci:DescribeContainerGroupPrice: the node goes on with cost.prices."""
    emulator.inject("DescribeContainerGroupPrice", "Forbidden.RAM", http_status=403,
                    message="User not authorized to operate on the specified resource.")
    applied: list[EciPriceTable] = []
    assert not await refresher(emulator, clients, applied).refresh()
    assert applied == []
    assert [c.http_status for c in emulator.calls("DescribeContainerGroupPrice")] == [403]


async def test_a_quote_in_another_currency_is_not_taken(emulator: EciEmulator, clients: list[EciClient]) -> None:
    """An international (USD) table against a China-site (CNY) account would mix currencies: refused, logged."""
    usd = CostSettings.model_validate({"prices": {"currency": "USD"}})
    applied: list[EciPriceTable] = []
    assert not await refresher(emulator, clients, applied, usd).refresh()
    assert applied == []


def test_another_regions_prices_are_not_asked() -> None:
    provider = EciProviderSettings(region_id="cn-hangzhou")
    assert EciPriceRefresh.applies(provider, CostSettings())
    assert EciPriceRefresh.applies(provider, CostSettings(region_id="cn-hangzhou"))
    assert not EciPriceRefresh.applies(provider, CostSettings(region_id="cn-beijing"))
