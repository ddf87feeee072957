"""sizing.py through plan_create: the group's size from the containers, rounded to an ECI spec, and GPUs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.providers.eci.translate_pods import container, plan, pod, wire
from vnode.errors import InvalidPod
from vnode.providers.eci.annotations import USE_SPECS
from vnode.providers.eci.translate import GroupShape


def sized(cpu: str | None = None, memory: str | None = None, *, kind: str = "requests") -> dict[str, Any]:
    resources = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return container(f"c-{cpu}-{memory}", resources={kind: resources})


def shape(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> str:
    (only,) = plan(pod(*containers, init=init)).shapes
    return only.label()


def test_a_container_that_sets_nothing_counts_ecis_default_of_1_vcpu_2_gib() -> None:
    assert shape(container()) == "1-2Gi"


def test_each_bare_container_counts_the_default() -> None:
    assert shape(container("a"), container("b")) == "2-4Gi"


def test_2_vcpu_3_gib_rounds_up_to_2_4() -> None:
    assert shape(sized("2", "3Gi")) == "2-4Gi"


def test_a_small_pod_rounds_up_to_the_smallest_spec() -> None:
    assert shape(sized("100m", "100Mi")) == "0.25-0.5Gi"


def test_only_the_resource_a_container_leaves_unset_gets_the_default() -> None:
    # Memory declared: only its vCPU is defaulted (1), not its memory.
    assert shape(sized(memory="8Gi")) == "1-8Gi"


def test_limits_count_when_above_requests() -> None:
    spec = container(resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "4", "memory": "6Gi"}})
    assert shape(spec) == "4-8Gi"


def test_7_vcpu_13_gib_rounds_to_8_16() -> None:
    assert shape(sized("7", "13Gi")) == "8-16Gi"


def test_memory_beyond_a_vcpu_counts_range_moves_to_more_vcpu() -> None:
    assert shape(sized("1", "12Gi")) == "2-16Gi"


def test_a_large_pod_rounds_to_52_vcpu() -> None:
    assert shape(sized("40", "100Gi", kind="limits")) == "52-192Gi"


def test_an_init_container_bigger_than_the_app_containers_sizes_the_group() -> None:
    assert shape(sized("500m", "1Gi"), init=(sized("4", "8Gi"),)) == "4-8Gi"


def test_init_containers_count_their_largest_not_their_sum() -> None:
    assert shape(sized("2", "4Gi"), init=(sized("2", "4Gi"), sized("1", "2Gi"))) == "2-4Gi"


def test_the_computed_shape_is_sent_as_cpu_and_memory() -> None:
    sent = wire(pod(sized("2", "3Gi")))
    assert (sent["Cpu"], sent["Memory"]) == ("2.0", "4.0") and "InstanceType" not in sent


@pytest.mark.parametrize(("cpu", "memory"), [("65", "128Gi"), ("8", "600Gi")])
def test_a_pod_bigger_than_the_largest_instance_is_refused(cpu: str, memory: str) -> None:
    with pytest.raises(InvalidPod, match="largest ECI instance"):
        plan(pod(sized(cpu, memory)))


def test_a_bad_quantity_is_refused_naming_it() -> None:
    with pytest.raises(InvalidPod) as caught:
        plan(pod(sized("lots")))
    assert caught.value.field == "spec.containers[0].resources.requests[cpu]"


def test_labels_read_like_the_annotation() -> None:
    assert (GroupShape(0.25, 0.5).label(), GroupShape(instance_type="ecs.c6.xlarge").label()) == (
        "0.25-0.5Gi", "ecs.c6.xlarge")


GPU = container(resources={"limits": {"nvidia.com/gpu": "1", "cpu": "4", "memory": "15Gi"}})


def test_gpus_go_to_the_container_and_the_group_gets_the_instance_type() -> None:
    sent = wire(pod(GPU, annotations={USE_SPECS: "ecs.gn6i-c4g1.xlarge"}))
    assert (sent["Container.1.Gpu"], sent["InstanceType"]) == ("1", "ecs.gn6i-c4g1.xlarge")
    assert "Cpu" not in sent and "Memory" not in sent


def test_gpus_without_an_instance_type_are_refused_naming_the_limit() -> None:
    with pytest.raises(InvalidPod, match=USE_SPECS) as caught:
        plan(pod(GPU))
    assert caught.value.field == "spec.containers[0].resources.limits[nvidia.com/gpu]"


def test_gpus_with_a_vcpu_memory_spec_are_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        plan(pod(GPU, annotations={USE_SPECS: "ecs.gn6i-c4g1.xlarge,4-16Gi"}))
    assert caught.value.field == f"metadata.annotations[{USE_SPECS}]"


def test_a_fraction_of_a_gpu_is_refused() -> None:
    with pytest.raises(InvalidPod, match="whole number"):
        plan(pod(container(resources={"limits": {"nvidia.com/gpu": "500m"}})))
