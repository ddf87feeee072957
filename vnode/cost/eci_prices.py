"""ECI's own prices for the ledger: DescribeContainerGroupPrice as the `pricing.PriceLookup` that
`refresh_region_prices` takes, and `EciPriceRefresh`, the task that asks ECI at start and once a day.

Owns the reading of the price answer (eci-pricing.md §3: `PriceInfo.Price` and its `DetailInfos` are per second,
[inferred] from the docs example) and the EciClient it opens for each refresh, closed after it. A refresh that fails
keeps the prices in use and is logged: it must never stop the node. Imported only when the provider is eci (it loads
the Aliyun SDK through the client).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from vnode.clock import Clock
from vnode.config import CostSettings, EciPriceTable, EciProviderSettings
from vnode.cost.pricing import PriceLookup, PriceQuote, PriceRequest, refresh_region_prices
from vnode.cost.shape import decimal_of
from vnode.errors import VnodeError
from vnode.providers.eci.client import EciClient
from vnode.providers.eci.provider import build_client

log = logging.getLogger(__name__)
ACTION = "DescribeContainerGroupPrice"
# List prices change rarely; a day keeps a long-running node current at 7 calls a day (quota: 1000 a minute).
REFRESH_INTERVAL_SECONDS = 86_400.0
# Bounds one refresh, retries included: past it the node starts with the configured table.
REFRESH_TIMEOUT_SECONDS = 30.0


def quote_of(answer: Mapping[str, Any]) -> PriceQuote:
    """The per-second quote in a DescribeContainerGroupPrice answer (TradePrice = OriginalPrice − DiscountPrice)."""
    price = answer["PriceInfo"]["Price"]
    details = (price.get("DetailInfos") or {}).get("DetailInfo") or []
    return PriceQuote(currency=str(price["Currency"]), per_second=decimal_of(price["TradePrice"]),
                      details={str(d["Resource"]): decimal_of(d["TradePrice"]) for d in details})


def price_lookup(client: EciClient) -> PriceLookup:
    """DescribeContainerGroupPrice through `client` (its region): an InstanceType, else a Cpu/Memory shape."""

    async def lookup(request: PriceRequest) -> PriceQuote:
        if request.region_id != client.region_id:
            raise VnodeError(f"prices of {request.region_id} asked through a client of {client.region_id}")
        params: dict[str, Any] = {"InstanceType": request.instance_type or None}
        if not request.instance_type:
            params.update(Cpu=_number(request.cpu), Memory=_number(request.memory_gib))
        return quote_of(await client.call(ACTION, params, mutating=False))

    return lookup


def _number(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


class EciPriceRefresh:
    """Gives `apply` the configured table with the provider region's prices as ECI quotes them, at start and every
    `REFRESH_INTERVAL_SECONDS`. `ready` is set once the first attempt is over, whether it succeeded or not."""

    def __init__(self, provider: EciProviderSettings, cost: CostSettings, clock: Clock,
                 apply: Callable[[EciPriceTable], None],
                 client_factory: Callable[[EciProviderSettings, Clock], EciClient] = build_client) -> None:
        self._provider, self._table, self._clock = provider, cost.prices, clock
        self._apply = apply
        self._client_factory = client_factory
        self.ready = asyncio.Event()

    @classmethod
    def applies(cls, provider: EciProviderSettings, cost: CostSettings) -> bool:
        """Whether ECI can quote the region pods are costed in: the provider's, unless cost.region_id names
        another (the provider's credentials and endpoint belong to its own region)."""
        return cost.region_id in (None, "", provider.region_id)

    async def run(self) -> None:
        """Refresh until cancelled."""
        while True:
            await self.refresh()
            self.ready.set()
            await self._clock.sleep(REFRESH_INTERVAL_SECONDS)

    async def refresh(self) -> bool:
        """One refresh; False (logged) when ECI did not give prices and the ones in use stay."""
        region = self._provider.region_id
        client = self._client_factory(self._provider, self._clock)
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT_SECONDS):
                table = await refresh_region_prices(self._table, region, price_lookup(client))
        except (VnodeError, TimeoutError) as exc:
            log.warning("cost: ECI prices of %s not refreshed (%s); pods are costed with cost.prices", region, exc)
            return False
        except Exception:  # a malformed answer: the configured table is still a sound price
            log.exception("cost: ECI's %s answer could not be read; pods are costed with cost.prices", ACTION)
            return False
        finally:
            await client.aclose()
        self._apply(table)
        prices = table.for_region(region)
        log.info("cost: ECI prices of %s: %s %s per vCPU-second, %s per GiB-second, %d instance types", region,
                 prices.vcpu_second, table.currency, prices.gib_second, len(prices.instance_types))
        return True
