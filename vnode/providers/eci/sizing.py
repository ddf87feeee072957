"""How big a container group a pod needs: per-container vCPU/GiB/GPU from requests and limits, the group's total as
the kubelet counts it, and the supported ECI spec that total rounds up to.

Owns `GroupShape` (one size to try: vCPU and GiB, or an ECS instance type) and ECI's table of specs. Pure: it must
not read annotations (annotations.py turns `eci-use-specs` into shapes) or build request parameters for containers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from vnode.errors import InvalidPod
from vnode.util.quantity import parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"
_GIB = Fraction(2**30)
# ECI's per-container default when a container declares nothing for a resource (eci.md §4 "Sizing").
_DEFAULT_CPU, _DEFAULT_MEMORY_GIB = Fraction(1), Fraction(2)
# The vCPU → memory (GiB) specs every ECI region sells ("Specify vCPUs and memory", help.aliyun.com 114662). Larger
# regional-only specs (e.g. 2 vCPU/6 GiB) cannot be spot instances, so vnode rounds to these.
SPECS: tuple[tuple[Fraction, tuple[Fraction, ...]], ...] = tuple(
    (Fraction(cpu), tuple(Fraction(m) for m in memories)) for cpu, memories in (
        ("0.25", ("0.5", "1")), ("0.5", ("1", "2")), ("1", ("2", "4", "8")), ("2", ("1", "2", "4", "8", "16")),
        ("4", ("2", "4", "8", "16", "32")), ("8", ("4", "8", "16", "32", "64")), ("12", ("12", "24", "48", "96")),
        ("16", ("16", "32", "64", "128")), ("24", ("24", "48", "96", "192")), ("32", ("32", "64", "128", "256")),
        ("52", ("96", "192", "384")), ("64", ("128", "256", "512"))))


@dataclass(frozen=True)
class GroupShape:
    """One size to create the group with: `cpu` vCPU and `memory` GiB, or an ECS `instance_type` (GPU types carry
    no cpu/memory: the type decides them)."""

    cpu: float | None = None
    memory: float | None = None
    instance_type: str | None = None

    def params(self) -> dict[str, Any]:
        if self.instance_type:
            return {"InstanceType": self.instance_type}
        return {"Cpu": self.cpu, "Memory": self.memory} if self.cpu is not None else {}

    def label(self) -> str:
        """As the `eci-use-specs` annotation writes it: `2-4Gi` or `ecs.c6.xlarge`."""
        if self.instance_type:
            return self.instance_type
        return f"{self.cpu:g}-{self.memory:g}Gi"


@dataclass(frozen=True)
class Need:
    """What one container (or the whole group) asks for: vCPU, GiB, GPUs; None where it declares nothing."""

    cpu: Fraction | None
    memory: Fraction | None
    gpu: int = 0


def container_need(container: Mapping[str, Any], where: str) -> Need:
    """max(request, limit) per resource, in vCPU and GiB to 3 decimals (ACK sizes a pod by its limits when both are
    set, and a limit never sits below its request); None when the container sets neither."""
    resources = container.get("resources") or {}
    requests: Mapping[str, Any] = resources.get("requests") or {}
    limits: Mapping[str, Any] = resources.get("limits") or {}

    def biggest(name: str) -> Fraction | None:
        values = []
        for kind, table in (("limits", limits), ("requests", requests)):
            if name in table:
                try:
                    values.append(parse_quantity(table[name]))
                except ValueError as exc:
                    raise InvalidPod(str(exc), field=f"{where}.resources.{kind}[{name}]") from exc
        return max(values) if values else None

    cpu, memory = biggest("cpu"), biggest("memory")
    gpus = biggest(GPU_RESOURCE) or Fraction(0)
    if gpus.denominator != 1 or gpus < 0:
        raise InvalidPod(f"{GPU_RESOURCE} must be a whole number of GPUs",
                         field=f"{where}.resources.limits[{GPU_RESOURCE}]")
    return Need(None if cpu is None else _thousandths(cpu), None if memory is None else _thousandths(memory / _GIB),
                int(gpus))


def group_need(containers: Sequence[Need], init_containers: Sequence[Need]) -> Need:
    """The group total as the kubelet counts a pod: max(sum of app containers, largest init container), each
    resource apart. An app container that declares nothing for a resource counts ECI's default (1 vCPU, 2 GiB); an
    init container that declares nothing counts nothing: it runs alone, inside whatever the app containers get."""
    cpu = sum((c.cpu if c.cpu is not None else _DEFAULT_CPU for c in containers), Fraction(0))
    memory = sum((c.memory if c.memory is not None else _DEFAULT_MEMORY_GIB for c in containers), Fraction(0))
    gpu = sum(c.gpu for c in containers)
    for init in init_containers:
        cpu, memory = max(cpu, init.cpu or Fraction(0)), max(memory, init.memory or Fraction(0))
        gpu = max(gpu, init.gpu)
    return Need(cpu, memory, gpu)


def round_up(need: Need) -> GroupShape:
    """The smallest supported spec (fewest vCPU, then least memory) holding `need`, as ECI itself rounds."""
    cpu, memory = need.cpu or Fraction(0), need.memory or Fraction(0)
    for spec_cpu, memories in SPECS:
        if spec_cpu < cpu:
            continue
        for spec_memory in memories:
            if spec_memory >= memory:
                return GroupShape(float(spec_cpu), float(spec_memory))
    raise InvalidPod(f"the pod needs {float(cpu):g} vCPU and {float(memory):g} GiB; the largest ECI instance has "
                     f"{float(SPECS[-1][0]):g} vCPU and {float(SPECS[-1][1][-1]):g} GiB", field="spec.containers")


def _thousandths(value: Fraction) -> Fraction:
    # Container.N.Cpu/Memory take 3 decimals: round up, so a container never gets less than it asked for, and size
    # the group from the same rounded values, so it always holds what its containers are sent.
    return Fraction(math.ceil(value * 1000), 1000)
