"""annotations.py through plan_create: each ACK `k8s.aliyun.com/*` annotation, and an invalid value of each."""

from __future__ import annotations

import pytest

from tests.unit.providers.eci.translate_pods import SETTINGS, container, plan, pod, wire
from vnode.errors import InvalidPod
from vnode.providers.eci import annotations as a
from vnode.providers.eci.client import flatten
from vnode.providers.eci.translate import GroupShape, SpotPlan


def annotated(annotations: dict[str, str], *, spot: bool = False) -> dict[str, str]:
    return wire(pod(annotations=annotations), spot=spot)


def test_use_specs_become_shapes_tried_in_order() -> None:
    assert plan(pod(annotations={a.USE_SPECS: "2-4Gi, 0.5-1,ecs.c6.xlarge"})).shapes == (
        GroupShape(2, 4), GroupShape(0.5, 1), GroupShape(instance_type="ecs.c6.xlarge"))


def test_each_attempt_sends_its_shape() -> None:
    created = plan(pod(annotations={a.USE_SPECS: "2-4Gi,ecs.c6.xlarge"}))
    first, second = (flatten(created.attempt_params(s, spot=False)) for s in created.shapes)
    assert (first["Cpu"], first["Memory"], second["InstanceType"]) == ("2.0", "4.0", "ecs.c6.xlarge")
    assert "InstanceType" not in first and "Cpu" not in second


def test_use_specs_replace_the_computed_shape() -> None:
    spec = container(resources={"requests": {"cpu": "8", "memory": "16Gi"}})
    assert plan(pod(spec, annotations={a.USE_SPECS: "2-4Gi"})).shapes == (GroupShape(2, 4),)


def test_spot_as_price_go_with_duration_and_fallback() -> None:
    created = plan(pod(annotations={a.SPOT_STRATEGY: "SpotAsPriceGo", a.SPOT_DURATION: "0",
                                    a.SPOT_FALLBACK: "true"}))
    assert created.spot == SpotPlan("SpotAsPriceGo", None, 0, True)


def test_a_spot_attempt_sends_the_strategy_limit_and_duration() -> None:
    sent = annotated({a.SPOT_STRATEGY: "SpotWithPriceLimit", a.SPOT_PRICE_LIMIT: "0.125", a.SPOT_DURATION: "1"},
                     spot=True)
    assert (sent["SpotStrategy"], sent["SpotPriceLimit"], sent["SpotDuration"]) == ("SpotWithPriceLimit", "0.125",
                                                                                    "1")


def test_a_non_spot_attempt_of_a_spot_pod_sends_no_spot() -> None:
    sent = annotated({a.SPOT_STRATEGY: "SpotAsPriceGo"}, spot=False)
    assert sent["SpotStrategy"] == "NoSpot" and "SpotDuration" not in sent


def test_a_pod_without_spot_annotations_has_no_spot_plan() -> None:
    assert plan(pod()).spot is None and wire(pod(), spot=True)["SpotStrategy"] == "NoSpot"


def test_image_cache_and_snapshot() -> None:
    sent = annotated({a.IMAGE_CACHE: "true", a.IMAGE_SNAPSHOT: "imc-2ze5tm5gehgtiiga1234"})
    assert (sent["AutoMatchImageCache"], sent["ImageSnapshotId"]) == ("true", "imc-2ze5tm5gehgtiiga1234")


def test_vswitch_annotation_overrides_the_settings_with_its_strategy() -> None:
    sent = annotated({a.VSWITCH: "vsw-a1, vsw-b2", a.SCHEDULE_STRATEGY: "VSwitchRandom"})
    assert (sent["VSwitchId"], sent["ScheduleStrategy"]) == ("vsw-a1,vsw-b2", "VSwitchRandom")


def test_security_group_annotation_overrides_the_settings() -> None:
    assert annotated({a.SECURITY_GROUP: "sg-bp1abc"})["SecurityGroupId"] == "sg-bp1abc"


def test_with_eip_and_its_bandwidth() -> None:
    sent = annotated({a.WITH_EIP: "true", a.EIP_BANDWIDTH: "10"})
    assert (sent["AutoCreateEip"], sent["EipBandwidth"]) == ("true", "10")


def test_an_existing_eip() -> None:
    sent = annotated({a.EIP_INSTANCE: "eip-bp1q5"})
    assert sent["EipInstanceId"] == "eip-bp1q5" and "AutoCreateEip" not in sent


@pytest.mark.parametrize(("size", "gib"), [("50Gi", "50"), ("500Mi", "1"), ("20G", "19")])
def test_extra_ephemeral_storage_in_whole_gib(size: str, gib: str) -> None:
    assert annotated({a.EPHEMERAL_STORAGE: size})["EphemeralStorage"] == gib


def test_ram_role_and_resource_group() -> None:
    sent = annotated({a.RAM_ROLE: "ci-builder", a.RESOURCE_GROUP: "rg-acfm2"})
    assert (sent["RamRoleName"], sent["ResourceGroupId"]) == ("ci-builder", "rg-acfm2")


@pytest.mark.parametrize(("value", "default", "expected"), [("true", False, True), ("false", True, False),
                                                            (None, True, True)])
def test_fail_on_create_error_annotation_over_the_setting(value: str | None, default: bool, expected: bool) -> None:
    settings = SETTINGS.model_copy(update={"fail_on_create_error": default})
    annotations = {a.FAIL_ON_CREATE_ERROR: value} if value is not None else {}
    assert plan(pod(annotations=annotations), settings).fail_on_create_error is expected


def test_unknown_eci_annotations_are_ignored() -> None:
    assert annotated({"k8s.aliyun.com/eci-instance-family": "c6", "k8s.aliyun.com/eci-ntp-server": "x"}) == wire(pod())


@pytest.mark.parametrize(("key", "value"), [
    (a.USE_SPECS, "2cpu-4Gi"), (a.USE_SPECS, "2-4Gi,,ecs.c6.xlarge"), (a.USE_SPECS, "0-1Gi"),
    (a.SPOT_STRATEGY, "Cheap"), (a.SPOT_PRICE_LIMIT, "0.1234"), (a.SPOT_PRICE_LIMIT, "free"),
    (a.SPOT_DURATION, "-1"), (a.SPOT_FALLBACK, "yes"), (a.IMAGE_CACHE, "on"), (a.IMAGE_SNAPSHOT, "snap-1"),
    (a.VSWITCH, "vsw-a,subnet-b"), (a.VSWITCH, ",".join(f"vsw-{n}" for n in range(11))),
    (a.SCHEDULE_STRATEGY, "Random"), (a.SECURITY_GROUP, "default"), (a.WITH_EIP, "1"), (a.EIP_BANDWIDTH, "0"),
    (a.EIP_INSTANCE, "1.2.3.4"), (a.EPHEMERAL_STORAGE, "lots"), (a.EPHEMERAL_STORAGE, "0"),
    (a.RAM_ROLE, "two words"), (a.RESOURCE_GROUP, "prod"), (a.FAIL_ON_CREATE_ERROR, "maybe"),
])
def test_an_invalid_value_is_refused_naming_the_annotation(key: str, value: str) -> None:
    with pytest.raises(InvalidPod) as caught:
        annotated({key: value})
    assert caught.value.field == f"metadata.annotations[{key}]"


def test_spot_with_price_limit_needs_a_price() -> None:
    with pytest.raises(InvalidPod) as caught:
        annotated({a.SPOT_STRATEGY: "SpotWithPriceLimit"})
    assert caught.value.field == f"metadata.annotations[{a.SPOT_PRICE_LIMIT}]"


def test_a_new_eip_and_an_existing_one_together_are_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        annotated({a.WITH_EIP: "true", a.EIP_INSTANCE: "eip-bp1q5"})
    assert caught.value.field == f"metadata.annotations[{a.EIP_INSTANCE}]"
