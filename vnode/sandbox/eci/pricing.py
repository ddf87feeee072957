"""DescribeContainerGroupPrice: what a group of a given shape costs, quoted from an `EciPriceTable`.

Price period, decided from ECI's own API reference example (eci-pricing.md §3): `PriceInfo.Price` and its
`DetailInfos` are **per second** — the docs quote 2 vCPU / 4 GiB in cn-hangzhou at 0.00012252 CNY, which is
2 × 0.000049 + 4 × 0.00000613, the per-second list rates, and an InstanceType at 0.00017222 ≈ 0.62 CNY/h ÷ 3600 —
while `SpotPrices` are **per hour** (0.056 against an OriginPrice of 0.622 for ecs.c5.large; SpotPriceLimit is
hourly too). So TradePrice × billable seconds is a group's pay-as-you-go cost. [inferred: confirm with one live
call] TradePrice = OriginalPrice − DiscountPrice; the table has no discounts, so DiscountPrice is 0.

Shapes: `InstanceType` wins over Cpu/Memory and is priced at its hourly ECS price ÷ 3600 (detail `instance_type`);
otherwise Cpu × the vCPU rate (`cpu`, the economy rate with ComputeCategory=economy) plus Memory × the GiB rate
(`memory`); EphemeralStorage beyond the free 30 GiB adds `ephemeral_storage` [unverified resource name]. A spot
strategy lists the spot market price of the instance type, or of every table type of exactly the vCPU/memory shape
(ECI refuses spot for shapes no ECS type has: InvalidSpotCpuMemorySpec). The price does not depend on ZoneId,
SpotDuration or SpotPriceLimit here. This module must not know about HTTP or container groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vnode.config import EciPriceTable, EciRegionPrices
from vnode.sandbox.eci import params as p
from vnode.sandbox.eci.actions import Handler
from vnode.sandbox.eci.errors import EciApiError, invalid, missing

_SPOT_STRATEGIES = ("NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo")
_CATEGORIES = ("economy", "general")
_DEFAULT_SHAPE = (2.0, 4.0)  # ECI's default group size: 2 vCPU / 4 GiB
_ECONOMY_CPU = (0.25, 8.0)  # economy instances come in 0.25 to 8 vCPUs
_PLACES = 8  # the docs' answers carry 8 decimals (0.00012252)


@dataclass(frozen=True)
class Quote:
    """Per-second prices by resource (`cpu`, `memory`, `instance_type`, `ephemeral_storage`)."""

    details: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        return sum(price for _, price in self.details)


def shape_quote(rates: EciRegionPrices, *, cpu: float, memory: float, economy: bool = False,
                ephemeral_storage_gib: float = 0.0) -> Quote:
    """A vCPU/memory group's per-second price."""
    details = [("cpu", cpu * (rates.economy_vcpu_second if economy else rates.vcpu_second)),
               ("memory", memory * rates.gib_second)]
    return Quote(tuple(details) + _storage(rates, ephemeral_storage_gib))


def instance_quote(rates: EciRegionPrices, instance_type: str, *, ephemeral_storage_gib: float = 0.0) -> Quote:
    """An InstanceType group's per-second price; KeyError when the table does not price that type."""
    hourly = rates.instance_types[instance_type].hourly
    return Quote((("instance_type", hourly / 3600),) + _storage(rates, ephemeral_storage_gib))


def _storage(rates: EciRegionPrices, gib: float) -> tuple[tuple[str, float], ...]:
    extra = max(0.0, gib - rates.free_ephemeral_storage_gib)
    return (("ephemeral_storage", extra * rates.ephemeral_storage_gib_second),) if extra else ()


def spot_types(rates: EciRegionPrices, *, cpu: float, memory: float) -> list[str]:
    """Table types (without GPUs) of exactly this vCPU/memory shape, cheapest first."""
    matches = [(t.hourly, name) for name, t in rates.instance_types.items()
               if t.gpu == 0 and abs(t.cpu - cpu) < 1e-9 and abs(t.memory - memory) < 1e-9]
    return [name for _, name in sorted(matches)]


def spot_hourly(rates: EciRegionPrices, instance_type: str) -> tuple[float, float]:
    """(spot market price, pay-as-you-go price) per hour; the spot price has 3 decimals like SpotPriceLimit."""
    origin = rates.instance_types[instance_type].hourly
    return round(origin * (1 - rates.spot_discount), 3), origin


def _money(value: float) -> float:
    return round(value, _PLACES)


def _price_view(currency: str, quote: Quote) -> dict[str, Any]:
    details = [{"Resource": resource, "OriginalPrice": _money(price), "DiscountPrice": 0.0,
                "TradePrice": _money(price), "Rules": {"Rule": []}} for resource, price in quote.details]
    total = _money(quote.total)
    return {"Currency": currency, "OriginalPrice": total, "DiscountPrice": 0.0, "TradePrice": total,
            "DetailInfos": {"DetailInfo": details}}


class EciPricing:
    """The price action of one region's emulator."""

    def __init__(self, table: EciPriceTable, *, region_id: str, zone_id: str) -> None:
        self._table = table
        self._rates = table.for_region(region_id)
        self._zone_id = zone_id
        self.handlers: dict[str, Handler] = {"DescribeContainerGroupPrice": self.describe_container_group_price}

    def describe_container_group_price(self, params: p.Params) -> dict[str, Any]:
        strategy = params.get("SpotStrategy") or "NoSpot"
        if strategy not in _SPOT_STRATEGIES:
            raise invalid("SpotStrategy", f"one of {', '.join(_SPOT_STRATEGIES)}")
        spot = strategy != "NoSpot"
        if strategy == "SpotWithPriceLimit" and not p.number(params, "SpotPriceLimit"):
            raise missing("SpotPriceLimit")
        p.integer(params, "SpotDuration", 1, low=0, high=6)  # protection hours; 0 = none
        storage = float(p.integer(params, "EphemeralStorage", 0, low=0, high=2048))
        category = params.get("ComputeCategory") or "general"
        if category not in _CATEGORIES:
            raise invalid("ComputeCategory", "economy or general")
        instance_type = params.get("InstanceType") or ""
        if instance_type:
            if instance_type not in self._rates.instance_types:
                raise invalid("InstanceType", f"{instance_type} is not an instance type priced in this region")
            quote = instance_quote(self._rates, instance_type, ephemeral_storage_gib=storage)
            candidates = [instance_type]
        else:
            cpu, memory = self._shape(params, economy=category == "economy")
            if spot and category == "economy":
                raise invalid("ComputeCategory", "economy instances cannot be spot instances")
            quote = shape_quote(self._rates, cpu=cpu, memory=memory, economy=category == "economy",
                                ephemeral_storage_gib=storage)
            candidates = spot_types(self._rates, cpu=cpu, memory=memory) if spot else []
            if spot and not candidates:
                raise EciApiError("InvalidSpotCpuMemorySpec", "The specified CPU and memory are not allowed. You "
                                  "must create spot ECI using standard ECS specifications for CPU and memory.")
        zone = params.get("ZoneId") or self._zone_id
        spot_prices = []
        for name in candidates if spot else []:
            price, origin = spot_hourly(self._rates, name)
            spot_prices.append({"InstanceType": name, "ZoneId": zone, "SpotPrice": price, "OriginPrice": origin})
        return {"PriceInfo": {"Price": _price_view(self._table.currency, quote), "Rules": {"Rule": []},
                              "SpotPrices": {"SpotPrice": spot_prices}}}

    @staticmethod
    def _shape(params: p.Params, *, economy: bool) -> tuple[float, float]:
        given_cpu, given_memory = p.number(params, "Cpu"), p.number(params, "Memory")
        cpu = _DEFAULT_SHAPE[0] if given_cpu is None else given_cpu
        memory = _DEFAULT_SHAPE[1] if given_memory is None else given_memory
        low, high = _ECONOMY_CPU if economy else (0.0, 64.0)  # 64 vCPUs per instance at most (eci.md §1)
        if cpu <= 0 or memory <= 0 or cpu < low or cpu > high:
            raise EciApiError("InvalidParam.CpuOrMemorySpec", "The specified specification is invalid.")
        return cpu, memory
