"""Prices and the cost arithmetic: which backend states are billed, the price basis of a pod, and its cost.

ECI bills per second (hourly price ÷ 3600): a vCPU/memory group at vCPU × vCPU-second + GiB × GiB-second, a group on
an ECS instance type at that type's hourly price (eci-pricing.md §1–2). Docker and mock pods are priced at a
notional rate and flagged as estimates. Amounts stay exact `Decimal`s here; rounding happens only when a report or
the `vnode.io/cost` annotation presents them. This module must not call ECI: `refresh_region_prices` takes the
DescribeContainerGroupPrice lookup as a function.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

from vnode.config import CostSettings, EciPriceTable, EciRegionPrices
from vnode.cost.shape import BilledShape, decimal_of, region_of_zone
from vnode.errors import ConfigError

# ECI group states that are billed (eci-pricing.md §2); Scheduling, Succeeded, Failed, Expired and ScheduleFailed
# are not. Kubernetes' Pending phase spans Scheduling, Pending and Restarting, hence the group Status, not the phase.
BILLED_STATES = frozenset({"Pending", "Running", "Restarting", "Updating", "Terminating"})
END_STATES = frozenset({"Succeeded", "Failed", "Expired"})
_MICROS = Decimal(1_000_000)
_HOUR_MICROS = Decimal(3600) * _MICROS
# 50 significant digits: an instance type's hourly price ÷ 3600 does not terminate; nothing presented gets near.
_EXACT = decimal.Context(prec=50)


def is_billed(backend_state: str, phase: str) -> bool:
    """Whether the backend bills a pod in this state; with no backend state (Docker, mock) the Running phase is."""
    if backend_state:
        return backend_state in BILLED_STATES
    return phase == "Running"


@dataclass(frozen=True, slots=True)
class PriceBasis:
    """The rates a pod is costed at, stored with it so a report repeats the arithmetic exactly."""

    currency: str
    source: str  # e.g. `eci-list:cn-hangzhou`, `eci-type:cn-hangzhou`, `notional`
    vcpu_second: Decimal = Decimal(0)
    gib_second: Decimal = Decimal(0)
    gpu_second: Decimal = Decimal(0)
    instance_hourly: Decimal = Decimal(0)  # non-zero: the group is billed at this ECS type's hourly price
    spot_factor: Decimal = Decimal(1)  # share of the pay-as-you-go price paid: 1 − spot discount for spot pods
    estimate: bool = False

    def to_json(self) -> str:
        return json.dumps({"currency": self.currency, "source": self.source, "vcpu_second": str(self.vcpu_second),
                           "gib_second": str(self.gib_second), "gpu_second": str(self.gpu_second),
                           "instance_hourly": str(self.instance_hourly), "spot_factor": str(self.spot_factor),
                           "estimate": self.estimate}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PriceBasis:
        data = json.loads(text)
        return cls(currency=data["currency"], source=data["source"], estimate=bool(data["estimate"]),
                   **{k: Decimal(data[k]) for k in ("vcpu_second", "gib_second", "gpu_second", "instance_hourly",
                                                    "spot_factor")})


def cost_of(shape: BilledShape, basis: PriceBasis, billed_micros: int) -> Decimal:
    """The cost of `billed_micros` microseconds of billed time, exact (no rounding)."""
    micros = Decimal(billed_micros)
    if basis.instance_hourly:
        amount = _EXACT.divide(_EXACT.multiply(micros, basis.instance_hourly), _HOUR_MICROS)
    else:
        per_second = _EXACT.add(_EXACT.add(_EXACT.multiply(shape.cpu, basis.vcpu_second),
                                           _EXACT.multiply(shape.memory_gib, basis.gib_second)),
                                _EXACT.multiply(Decimal(shape.gpu), basis.gpu_second))
        amount = _EXACT.divide(_EXACT.multiply(micros, per_second), _MICROS)
    return _EXACT.multiply(amount, basis.spot_factor)


def format_cost(amount: Decimal, currency: str, estimate: bool) -> str:
    """The `vnode.io/cost` annotation: the amount rounded half-up to 6 decimal places, the ISO currency code, and
    ` (estimate)` when the rate is notional or assumed (Docker, mock, spot): e.g. `0.007351 CNY`."""
    rounded = amount.quantize(Decimal("0.000001"), rounding=decimal.ROUND_HALF_UP)
    return f"{rounded} {currency}" + (" (estimate)" if estimate else "")


class Pricer:
    """Chooses a pod's price basis: ECI list prices of `region_id` for eci pods, the notional rate for the rest."""

    def __init__(self, settings: CostSettings, *, region_id: str = "") -> None:
        self._table = settings.prices
        self._region_id = settings.region_id or region_id
        self._notional = PriceBasis(
            currency=settings.prices.currency, source="notional", estimate=True,
            vcpu_second=decimal_of(settings.notional_vcpu_second), gib_second=decimal_of(settings.notional_gib_second),
            gpu_second=decimal_of(settings.notional_gpu_second))

    def complete(self, shape: BilledShape) -> BilledShape:
        """`shape` with GPUs filled in from the price table's entry for its instance type."""
        entry = self._region(shape).instance_types.get(shape.instance_type) if shape.instance_type else None
        if entry is None or not entry.gpu or shape.gpu:
            return shape
        return replace(shape, gpu=entry.gpu, gpu_type=entry.gpu_type or "")

    def basis(self, shape: BilledShape, provider: str) -> PriceBasis:
        if provider != "eci":
            return self._notional
        region_id = self._region_id or region_of_zone(shape.zone)
        prices = self._table.for_region(region_id)
        # ECI publishes no vCPU/memory spot rate; the discount is an assumption, so spot costs are estimates.
        spot_factor = Decimal(1) - decimal_of(prices.spot_discount) if shape.spot else Decimal(1)
        entry = prices.instance_types.get(shape.instance_type) if shape.instance_type else None
        if entry is not None:
            return PriceBasis(currency=self._table.currency, source=f"eci-type:{region_id}", spot_factor=spot_factor,
                              instance_hourly=decimal_of(entry.hourly), estimate=shape.spot)
        gpu_price = prices.gpu_second.get(shape.gpu_type) if shape.gpu else None
        vcpu = prices.economy_vcpu_second if shape.compute_category == "economy" else prices.vcpu_second
        return PriceBasis(
            currency=self._table.currency, source=f"eci-list:{region_id}", spot_factor=spot_factor,
            vcpu_second=decimal_of(vcpu), gib_second=decimal_of(prices.gib_second),
            gpu_second=decimal_of(gpu_price or 0),
            # An unknown instance type (costed by its vCPU/GiB), a GPU priced by share, a spot price: all guesses.
            estimate=shape.spot or bool(shape.instance_type) or bool(shape.gpu) or not shape.reported)

    def _region(self, shape: BilledShape) -> EciRegionPrices:
        return self._table.for_region(self._region_id or region_of_zone(shape.zone))


# The DescribeContainerGroupPrice hook. ECI's Price.* amounts are per second and SpotPrices per hour
# (eci-pricing.md §3, [inferred] from the docs example: 0.00012252 = 2 × 0.000049 + 4 × 0.00000613).


@dataclass(frozen=True)
class PriceRequest:
    region_id: str
    cpu: Decimal | None = None
    memory_gib: Decimal | None = None
    instance_type: str | None = None


@dataclass(frozen=True)
class PriceQuote:
    currency: str
    per_second: Decimal  # Price.TradePrice
    details: Mapping[str, Decimal]  # DetailInfo Resource → TradePrice per second (e.g. `cpu`, `memory`)


PriceLookup = Callable[[PriceRequest], Awaitable[PriceQuote]]


async def refresh_region_prices(table: EciPriceTable, region_id: str, lookup: PriceLookup, *,
                                probe_cpu: Decimal = Decimal(2),
                                probe_memory_gib: Decimal = Decimal(4)) -> EciPriceTable:
    """`table` with `region_id`'s vCPU and GiB rates and its instance types' hourly prices as ECI quotes them.

    One probe quote (2 vCPU / 4 GiB, a spec every region sells) gives the per-resource rates from its details; one
    quote per instance type in the table gives each type's price. Rates the quote does not break down are kept."""
    current = table.for_region(region_id)
    probe = await lookup(PriceRequest(region_id, cpu=probe_cpu, memory_gib=probe_memory_gib))
    if probe.currency != table.currency:
        raise ConfigError(f"cost.prices.currency is {table.currency} but ECI quotes {probe.currency}: set the "
                          "table's currency to the account's")
    updates: dict[str, object] = {}
    if "cpu" in probe.details:
        updates["vcpu_second"] = float(probe.details["cpu"] / probe_cpu)
    if "memory" in probe.details:
        updates["gib_second"] = float(probe.details["memory"] / probe_memory_gib)
    types = dict(current.instance_types)
    for name, entry in current.instance_types.items():
        quote = await lookup(PriceRequest(region_id, instance_type=name))
        types[name] = entry.model_copy(update={"hourly": float(quote.per_second * 3600)})
    refreshed = current.model_copy(update={**updates, "instance_types": types})
    return table.model_copy(update={"regions": {**table.regions, region_id: refreshed}})
