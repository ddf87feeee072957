"""The billed shape and the cost arithmetic, exact to the second."""

from __future__ import annotations

from decimal import Decimal

import pytest

from vnode.config import CostSettings, EciPriceTable, EciRegionPrices
from vnode.cost.pricing import (
    PriceBasis,
    PriceQuote,
    Pricer,
    PriceRequest,
    cost_of,
    format_cost,
    is_billed,
    refresh_region_prices,
)
from vnode.cost.shape import BilledShape, region_of_zone, shape_from_annotations, shape_from_spec

ECI_2C4G = {"k8s.aliyun.com/eci-instance-cpu": "2.0", "k8s.aliyun.com/eci-instance-memory": "4.0",
            "k8s.aliyun.com/eci-instance-zone": "cn-hangzhou-h", "k8s.aliyun.com/eci-instance-spec": "2.0-4.0Gi"}


@pytest.mark.parametrize(("state", "phase", "billed"), [
    ("Scheduling", "Pending", False), ("Pending", "Pending", True), ("Running", "Running", True),
    ("Restarting", "Pending", True), ("Updating", "Running", True), ("Terminating", "Running", True),
    ("Succeeded", "Succeeded", False), ("Failed", "Failed", False), ("Expired", "Failed", False),
    ("", "Pending", False), ("", "Running", True), ("", "Succeeded", False)])
def test_billed_states_follow_eci_and_the_running_phase_without_one(state: str, phase: str, billed: bool) -> None:
    assert is_billed(state, phase) is billed


def test_eci_vcpu_memory_cost_is_exact_to_the_second() -> None:
    """2 vCPU / 4 GiB for 61 s at the China-site list price: 61 × (2 × 0.000049 + 4 × 0.00000613)."""
    shape = shape_from_annotations(ECI_2C4G, BilledShape())
    basis = Pricer(CostSettings()).basis(shape, "eci")
    assert (basis.estimate, basis.source) == (False, "eci-list:cn-hangzhou")
    assert cost_of(shape, basis, 61_000_000) == Decimal("61") * Decimal("0.00012252")


def test_spot_pays_one_minus_the_discount_and_is_an_estimate() -> None:
    shape = shape_from_annotations({**ECI_2C4G, "k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo"}, BilledShape())
    basis = Pricer(CostSettings()).basis(shape, "eci")
    assert basis.estimate
    assert cost_of(shape, basis, 100_000_000) == Decimal("100") * Decimal("0.00012252") * Decimal("0.1")


def test_instance_type_is_billed_at_its_hourly_price_per_second() -> None:
    """A GPU type: 8.85 CNY/h for 90 s = 8.85 × 90 / 3600, with the type's GPU recorded on the shape."""
    pricer = Pricer(CostSettings())
    shape = pricer.complete(shape_from_annotations({**ECI_2C4G, "k8s.aliyun.com/eci-instance-spec":
                                                    "ecs.gn6i-c4g1.xlarge"}, BilledShape()))
    assert (shape.instance_type, shape.gpu, shape.gpu_type) == ("ecs.gn6i-c4g1.xlarge", 1, "T4")
    assert cost_of(shape, pricer.basis(shape, "eci"), 90_000_000) == Decimal("0.22125")


def test_gpu_share_adds_per_gpu_second() -> None:
    basis = PriceBasis(currency="CNY", source="test", vcpu_second=Decimal("0.000049"), gpu_second=Decimal("0.00217"))
    shape = BilledShape(cpu=Decimal(4), gpu=2, gpu_type="T4")
    assert cost_of(shape, basis, 10_000_000) == Decimal(10) * (4 * Decimal("0.000049") + 2 * Decimal("0.00217"))


def test_economy_category_pays_the_economy_vcpu_price() -> None:
    pod = {"metadata": {"annotations": {"k8s.aliyun.com/eci-compute-category": "economy"}},
           "spec": {"containers": [{"name": "a"}]}}
    shape = shape_from_annotations(ECI_2C4G, shape_from_spec(pod))
    basis = Pricer(CostSettings()).basis(shape, "eci")
    assert cost_of(shape, basis, 1_000_000) == 2 * Decimal("0.000027") + 4 * Decimal("0.00000613")


def test_docker_and_mock_use_the_notional_rate_as_estimates() -> None:
    settings = CostSettings(notional_vcpu_second=0.00001, notional_gib_second=0.000001)
    shape = BilledShape(cpu=Decimal("0.5"), memory_gib=Decimal("0.25"))
    basis = Pricer(settings).basis(shape, "docker")
    assert (basis.estimate, basis.source) == (True, "notional")
    assert cost_of(shape, basis, 3_000_000) == Decimal(3) * (Decimal("0.000005") + Decimal("0.00000025"))


def test_region_prices_and_currency_come_from_the_table() -> None:
    table = EciPriceTable(currency="USD", regions={"ap-southeast-1": EciRegionPrices(vcpu_second=0.0000077,
                                                                                   gib_second=0.00000096)})
    shape = shape_from_annotations({**ECI_2C4G, "k8s.aliyun.com/eci-instance-zone": "ap-southeast-1a"},
                                   BilledShape())
    basis = Pricer(CostSettings(prices=table)).basis(shape, "eci")
    assert basis.currency == "USD"
    assert cost_of(shape, basis, 1_000_000) == 2 * Decimal("0.0000077") + 4 * Decimal("0.00000096")


def test_spec_shape_sums_app_containers_and_takes_the_largest_init() -> None:
    pod = {"spec": {
        "containers": [{"name": "jnlp", "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
                       {"name": "build", "resources": {"limits": {"cpu": "1500m", "memory": "1Gi",
                                                                  "nvidia.com/gpu": "1"}}}],
        "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "3", "memory": "128Mi"}}}]}}
    shape = shape_from_spec(pod)
    assert (shape.cpu, shape.memory_gib, shape.gpu) == (Decimal(3), Decimal("1.25"), 1)


def test_containers_without_requests_count_the_defaults() -> None:
    shape = shape_from_spec({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}})
    assert (shape.cpu, shape.memory_gib) == (Decimal(2), Decimal(4))


def test_zone_names_its_region() -> None:
    assert region_of_zone("cn-hangzhou-h") == "cn-hangzhou"
    assert region_of_zone("ap-southeast-1a") == "ap-southeast-1"
    assert region_of_zone("cn-beijing") == "cn-beijing"


def test_cost_annotation_rounds_half_up_to_six_places() -> None:
    assert format_cost(Decimal("0.0073515"), "CNY", False) == "0.007352 CNY"
    assert format_cost(Decimal("0.000123"), "USD", True) == "0.000123 USD (estimate)"


def test_basis_survives_its_json_form() -> None:
    basis = PriceBasis(currency="USD", source="eci-type:x", instance_hourly=Decimal("0.622"),
                       spot_factor=Decimal("0.1"), estimate=True)
    assert PriceBasis.from_json(basis.to_json()) == basis


async def test_refresh_takes_rates_from_describe_container_group_price_quotes() -> None:
    """Per-resource details of a 2 vCPU / 4 GiB probe set the rates; a type's per-second quote sets its hourly."""
    asked: list[PriceRequest] = []

    async def lookup(request: PriceRequest) -> PriceQuote:
        asked.append(request)
        if request.instance_type:
            return PriceQuote("CNY", Decimal("0.0002"), {})
        return PriceQuote("CNY", Decimal("0.00012"), {"cpu": Decimal("0.0001"), "memory": Decimal("0.00002")})

    table = EciPriceTable(default=EciRegionPrices(instance_types={}))
    table = table.model_copy(update={"default": table.default.model_copy(update={"instance_types": {
        "ecs.c6.large": CostSettings().prices.default.instance_types["ecs.c6.large"]}})})
    refreshed = (await refresh_region_prices(table, "cn-shanghai", lookup)).for_region("cn-shanghai")
    assert (refreshed.vcpu_second, refreshed.gib_second) == (0.00005, 0.000005)
    assert refreshed.instance_types["ecs.c6.large"].hourly == pytest.approx(0.72)
    assert [r.instance_type for r in asked] == [None, "ecs.c6.large"]
