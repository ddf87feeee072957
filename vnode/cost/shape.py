"""The billed shape of a pod: vCPU, GiB, GPUs, instance type, spot or not, zone.

ECI pods take the shape ECI reports (the eci provider publishes it as `k8s.aliyun.com/eci-instance-*` annotations
on its status updates: ECI bills the rounded-up spec it returns, not the pod's requests). Docker and mock pods, and
ECI pods before ECI has answered, take it from the pod spec: what a kubelet would reserve. Pure: no prices, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from vnode.util.quantity import parse_quantity

ANNOTATION_INSTANCE_ID = "k8s.aliyun.com/eci-instance-id"
ANNOTATION_INSTANCE_SPEC = "k8s.aliyun.com/eci-instance-spec"  # `2.0-4.0Gi`, or the ECS type the group runs on
ANNOTATION_INSTANCE_CPU = "k8s.aliyun.com/eci-instance-cpu"  # vCPUs ECI billed (the group's Cpu)
ANNOTATION_INSTANCE_MEMORY = "k8s.aliyun.com/eci-instance-memory"  # GiB ECI billed (the group's Memory)
ANNOTATION_INSTANCE_ZONE = "k8s.aliyun.com/eci-instance-zone"
ANNOTATION_SPOT_STRATEGY = "k8s.aliyun.com/eci-spot-strategy"  # NoSpot | SpotAsPriceGo | SpotWithPriceLimit
# [unverified] the key the eci provider uses for the group's InstanceType; `eci-instance-spec` is read as well.
ANNOTATION_INSTANCE_TYPE = "k8s.aliyun.com/eci-instance-type"
# A user annotation (ACK's): `economy` groups pay the economy vCPU price (memory costs the same as general).
ANNOTATION_COMPUTE_CATEGORY = "k8s.aliyun.com/eci-compute-category"
GPU_RESOURCE = "nvidia.com/gpu"
_GIB = 2**30


@dataclass(frozen=True, slots=True)
class BilledShape:
    cpu: Decimal = Decimal(0)
    memory_gib: Decimal = Decimal(0)
    gpu: int = 0
    gpu_type: str = ""
    instance_type: str = ""
    spot: bool = False
    zone: str = ""
    compute_category: str = ""
    # True once the backend said what it bills (ECI annotations); False while the shape is read from the spec.
    reported: bool = False


@dataclass(frozen=True)
class SpecDefaults:
    """What a container that requests nothing counts for (ECI sizes such a container 1 vCPU, 2 GiB)."""

    cpu: Decimal = Decimal(1)
    memory_gib: Decimal = Decimal(2)


def decimal_of(value: float | int | str | Fraction) -> Decimal:
    """Exact enough for money: a float goes through its shortest repr (0.000049 stays 0.000049)."""
    if isinstance(value, Fraction):
        return Decimal(value.numerator) / Decimal(value.denominator)
    return Decimal(str(value))


def shape_from_spec(pod: Mapping[str, Any], defaults: SpecDefaults = SpecDefaults()) -> BilledShape:
    """The pod's effective requests as the kubelet counts them: max(sum of app containers, largest init container)
    per resource; a container's limit stands in for a missing request (the API server defaults it so)."""
    spec: Mapping[str, Any] = pod.get("spec") or {}
    meta: Mapping[str, Any] = pod.get("metadata") or {}

    def need(container: Mapping[str, Any]) -> tuple[Fraction, Fraction, int]:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        cpu = _quantity(requests.get("cpu", limits.get("cpu")), Fraction(str(defaults.cpu)))
        memory = _quantity(requests.get("memory", limits.get("memory")), Fraction(str(defaults.memory_gib)) * _GIB)
        gpu = _quantity(limits.get(GPU_RESOURCE, requests.get(GPU_RESOURCE)), Fraction(0))
        return cpu, memory / _GIB, int(gpu)

    apps = [need(c) for c in spec.get("containers") or []]
    inits = [need(c) for c in spec.get("initContainers") or []]
    totals = [max(sum((a[i] for a in apps), Fraction(0)), max((n[i] for n in inits), default=Fraction(0)))
              for i in range(3)]
    category = str((meta.get("annotations") or {}).get(ANNOTATION_COMPUTE_CATEGORY, "")).strip()
    return BilledShape(cpu=decimal_of(totals[0]).normalize(), memory_gib=decimal_of(totals[1]).normalize(),
                       gpu=int(totals[2]), compute_category="economy" if category == "economy" else "")


class SpecShapes:
    """`shape_from_spec` remembered by everything it reads (each container's cpu, memory and GPU quantities, the
    compute category): pods made from one template, as CI agents are, share one BilledShape, worked out once."""

    def __init__(self, defaults: SpecDefaults = SpecDefaults(), *, limit: int = 1024) -> None:
        self._defaults = defaults
        self._limit = limit
        self._shapes: dict[Hashable, BilledShape] = {}

    def of(self, pod: Mapping[str, Any]) -> BilledShape:
        key = _spec_key(pod)
        try:
            shape = self._shapes.get(key)
        except TypeError:  # a quantity that is not a JSON scalar: work it out, do not remember it
            return shape_from_spec(pod, self._defaults)
        if shape is None:
            if len(self._shapes) >= self._limit:
                del self._shapes[next(iter(self._shapes))]  # the oldest template
            shape = self._shapes[key] = shape_from_spec(pod, self._defaults)
        return shape


def _spec_key(pod: Mapping[str, Any]) -> Hashable:
    spec: Mapping[str, Any] = pod.get("spec") or {}
    meta: Mapping[str, Any] = pod.get("metadata") or {}

    def reads(container: Mapping[str, Any]) -> tuple[Any, ...]:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        return tuple(source.get(name) for source in (requests, limits) for name in ("cpu", "memory", GPU_RESOURCE))

    return (tuple(reads(c) for c in spec.get("containers") or []),
            tuple(reads(c) for c in spec.get("initContainers") or []),
            str((meta.get("annotations") or {}).get(ANNOTATION_COMPUTE_CATEGORY, "")))


def shape_from_annotations(annotations: Mapping[str, str], base: BilledShape) -> BilledShape:
    """`base` with what the backend's annotations say it bills; `base` itself when they say nothing."""
    if not any(key in annotations for key in (ANNOTATION_INSTANCE_CPU, ANNOTATION_INSTANCE_MEMORY,
                                              ANNOTATION_INSTANCE_SPEC, ANNOTATION_INSTANCE_TYPE)):
        return base
    spec = annotations.get(ANNOTATION_INSTANCE_SPEC, "")
    instance_type = annotations.get(ANNOTATION_INSTANCE_TYPE) or (spec if spec.startswith("ecs.") else "")
    spot = annotations.get(ANNOTATION_SPOT_STRATEGY, "")
    return replace(
        base, cpu=_decimal(annotations.get(ANNOTATION_INSTANCE_CPU), base.cpu),
        memory_gib=_decimal(annotations.get(ANNOTATION_INSTANCE_MEMORY), base.memory_gib),
        instance_type=instance_type or base.instance_type,
        spot=spot in ("SpotAsPriceGo", "SpotWithPriceLimit") if spot else base.spot,
        zone=annotations.get(ANNOTATION_INSTANCE_ZONE, base.zone), reported=True)


def region_of_zone(zone: str) -> str:
    """Alibaba Cloud zone ids are the region plus a letter: cn-hangzhou-h → cn-hangzhou, ap-southeast-1a →
    ap-southeast-1 (regions ending in a digit take the letter without a hyphen)."""
    if len(zone) > 2 and zone[-1].isalpha() and zone[-2] == "-":
        return zone[:-2]
    if len(zone) > 2 and zone[-1].isalpha() and zone[-2].isdigit():
        return zone[:-1]
    return zone


def _quantity(value: Any, default: Fraction) -> Fraction:
    if value is None:
        return default
    try:
        return parse_quantity(value)
    except ValueError:
        return default  # the API server validated the pod; an unreadable quantity here is not worth failing over


def _decimal(text: str | None, default: Decimal) -> Decimal:
    if not text:
        return default
    try:
        return Decimal(text.strip()).normalize()
    except InvalidOperation:
        return default
