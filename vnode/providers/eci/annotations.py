"""The ACK `k8s.aliyun.com/*` pod annotations vnode honours, read into ECI group options.

Owns the parsing and validation of each annotation (an invalid value is an `InvalidPod` naming it) and their
precedence over the node's settings. As on ACK, they are read at creation only. `k8s.aliyun.com/eci-*` annotations
not listed here (instance family, IPv6, NTP servers, CPU options, disk volumes…) are ignored, not refused: they tune
an instance and a pod without them still runs. Must not read the pod spec.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vnode.config import EciProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.eci.sizing import GroupShape
from vnode.util.quantity import parse_quantity

PREFIX = "k8s.aliyun.com/"
USE_SPECS = PREFIX + "eci-use-specs"
SPOT_STRATEGY, SPOT_PRICE_LIMIT = PREFIX + "eci-spot-strategy", PREFIX + "eci-spot-price-limit"
SPOT_DURATION, SPOT_FALLBACK = PREFIX + "eci-spot-duration", PREFIX + "eci-spot-fallback"
IMAGE_CACHE, IMAGE_SNAPSHOT = PREFIX + "eci-image-cache", PREFIX + "eci-image-snapshot-id"
VSWITCH, SCHEDULE_STRATEGY = PREFIX + "eci-vswitch", PREFIX + "eci-schedule-strategy"
SECURITY_GROUP = PREFIX + "eci-security-group"
WITH_EIP, EIP_BANDWIDTH, EIP_INSTANCE = PREFIX + "eci-with-eip", PREFIX + "eip-bandwidth", PREFIX + "eci-eip-instanceid"
EPHEMERAL_STORAGE = PREFIX + "eci-extra-ephemeral-storage"
RAM_ROLE, RESOURCE_GROUP = PREFIX + "eci-ram-role-name", PREFIX + "eci-resource-group-id"
FAIL_ON_CREATE_ERROR = PREFIX + "pod-fail-on-create-err"

# "2-4Gi" (or "2-4"): vCPU-GiB; anything starting "ecs." is an ECS instance type such as ecs.gn6i-c4g1.xlarge.
_SPEC = re.compile(r"^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)(?:Gi)?$")
_INSTANCE_TYPE = re.compile(r"^ecs\.[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_SPOT_STRATEGIES = ("SpotAsPriceGo", "SpotWithPriceLimit")
_SCHEDULE_STRATEGIES = ("VSwitchOrdered", "VSwitchRandom")
_MAX_VSWITCHES = 10  # VSwitchId takes at most 10 comma-separated ids
_RAM_ROLE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_GIB = 2**30


@dataclass(frozen=True)
class SpotPlan:
    """Preemptible instances: `strategy` SpotAsPriceGo or SpotWithPriceLimit (with `price_limit`, per hour);
    `duration` the protection hours (None: ECI's default of 1); `fallback` pay-as-you-go when no spot stock."""

    strategy: str
    price_limit: float | None
    duration: int | None
    fallback: bool


@dataclass(frozen=True)
class PodOptions:
    shapes: tuple[GroupShape, ...] | None  # from eci-use-specs; None: size from the containers
    spot: SpotPlan | None
    fail_on_create_error: bool
    params: dict[str, Any] = field(default_factory=dict)  # group-level CreateContainerGroup parameters


def annotation_field(key: str) -> str:
    return f"metadata.annotations[{key}]"


def read_options(annotations: Mapping[str, str], settings: EciProviderSettings) -> PodOptions:
    read = _Reader(annotations)
    params: dict[str, Any] = {**_network(read, settings), **_eip(read)}
    if (cache := read.boolean(IMAGE_CACHE)) is not None:
        params["AutoMatchImageCache"] = _wire(cache)
    params["ImageSnapshotId"] = read.resource_id(IMAGE_SNAPSHOT, "imc-")
    if (storage := read.get(EPHEMERAL_STORAGE)) is not None:
        params["EphemeralStorage"] = _gib(storage)
    if (role := read.get(RAM_ROLE)) is not None:
        if not _RAM_ROLE.match(role):
            raise InvalidPod(f"{role!r} is not a RAM role name", field=annotation_field(RAM_ROLE))
        params["RamRoleName"] = role
    params["ResourceGroupId"] = read.resource_id(RESOURCE_GROUP, "rg-")
    fail = read.boolean(FAIL_ON_CREATE_ERROR)
    return PodOptions(shapes=_shapes(read), spot=_spot(read),
                      fail_on_create_error=settings.fail_on_create_error if fail is None else fail,
                      params={k: v for k, v in params.items() if v is not None})


class _Reader:
    """Annotation values by key, each parse failure an InvalidPod naming the annotation."""

    def __init__(self, annotations: Mapping[str, str]) -> None:
        self._annotations = annotations

    def get(self, key: str) -> str | None:
        value = self._annotations.get(key)
        return None if value is None else str(value).strip()

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise InvalidPod(f"{value!r} is not true or false", field=annotation_field(key))
        return value.lower() == "true"

    def integer(self, key: str, *, low: int) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        if not value.isdigit() or int(value) < low:
            raise InvalidPod(f"{value!r} is not a whole number of at least {low}", field=annotation_field(key))
        return int(value)

    def one_of(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.get(key)
        if value is not None and value not in choices:
            raise InvalidPod(f"{value!r} is not one of {', '.join(choices)}", field=annotation_field(key))
        return value

    def resource_id(self, key: str, prefix: str) -> str | None:
        value = self.get(key)
        if value is not None and not re.fullmatch(re.escape(prefix) + r"[a-z0-9]+", value):
            raise InvalidPod(f"{value!r} is not an id of the form {prefix}…", field=annotation_field(key))
        return value


def _wire(value: bool) -> str:
    return "true" if value else "false"


def _gib(text: str) -> int:
    try:
        size = parse_quantity(text)
    except ValueError as exc:
        raise InvalidPod(str(exc), field=annotation_field(EPHEMERAL_STORAGE)) from exc
    if size <= 0:
        raise InvalidPod(f"{text!r} is not a positive size", field=annotation_field(EPHEMERAL_STORAGE))
    return math.ceil(size / _GIB)  # EphemeralStorage is whole GiB


def _shapes(read: _Reader) -> tuple[GroupShape, ...] | None:
    value = read.get(USE_SPECS)
    if value is None:
        return None
    shapes = []
    for entry in (part.strip() for part in value.split(",")):
        if match := _SPEC.match(entry):
            cpu, memory = float(match.group(1)), float(match.group(2))
            if cpu > 0 and memory > 0:
                shapes.append(GroupShape(cpu, memory))
                continue
        elif _INSTANCE_TYPE.match(entry):
            shapes.append(GroupShape(instance_type=entry))
            continue
        raise InvalidPod(f"{entry!r} is neither a vCPU-memory spec such as 2-4Gi nor an instance type such as "
                         "ecs.c6.xlarge", field=annotation_field(USE_SPECS))
    return tuple(shapes)


def _spot(read: _Reader) -> SpotPlan | None:
    strategy = read.one_of(SPOT_STRATEGY, (*_SPOT_STRATEGIES, "NoSpot"))
    price = read.get(SPOT_PRICE_LIMIT)
    limit: float | None = None
    if price is not None:
        # An hourly price with at most 3 decimals (SpotPriceLimit).
        if not re.fullmatch(r"\d+(\.\d{1,3})?", price) or float(price) <= 0:
            raise InvalidPod(f"{price!r} is not a price with at most 3 decimals",
                             field=annotation_field(SPOT_PRICE_LIMIT))
        limit = float(price)
    duration = read.integer(SPOT_DURATION, low=0)
    fallback = read.boolean(SPOT_FALLBACK)
    if strategy is None or strategy == "NoSpot":
        return None
    if strategy == "SpotWithPriceLimit" and limit is None:
        raise InvalidPod("SpotWithPriceLimit needs a price limit", field=annotation_field(SPOT_PRICE_LIMIT))
    return SpotPlan(strategy, limit if strategy == "SpotWithPriceLimit" else None, duration, bool(fallback))


def _network(read: _Reader, settings: EciProviderSettings) -> dict[str, Any]:
    params: dict[str, Any] = {}
    strategy = read.one_of(SCHEDULE_STRATEGY, _SCHEDULE_STRATEGIES) or settings.schedule_strategy
    annotated = read.get(VSWITCH)
    vswitches = tuple(v.strip() for v in annotated.split(",")) if annotated is not None else settings.vswitch_ids
    if annotated is not None and (len(vswitches) > _MAX_VSWITCHES or
                                  not all(re.fullmatch(r"vsw-[a-z0-9]+", v) for v in vswitches)):
        raise InvalidPod(f"{annotated!r} is not a comma-separated list of at most {_MAX_VSWITCHES} vSwitch ids",
                         field=annotation_field(VSWITCH))
    if vswitches:
        params["VSwitchId"] = ",".join(vswitches)
        if len(vswitches) > 1:
            params["ScheduleStrategy"] = strategy
    elif settings.zone_id:
        params["ZoneId"] = settings.zone_id  # a vSwitch decides its zone
    params["SecurityGroupId"] = read.resource_id(SECURITY_GROUP, "sg-") or settings.security_group_id or None
    return params


def _eip(read: _Reader) -> dict[str, Any]:
    with_eip = read.boolean(WITH_EIP)
    bandwidth = read.integer(EIP_BANDWIDTH, low=1)  # Mbit/s; ECI's default is 5
    instance = read.resource_id(EIP_INSTANCE, "eip-")
    if instance is not None and with_eip:
        raise InvalidPod(f"give either {WITH_EIP} or an existing EIP, not both", field=annotation_field(EIP_INSTANCE))
    if with_eip:
        return {"AutoCreateEip": "true", "EipBandwidth": bandwidth}
    return {"EipInstanceId": instance}
