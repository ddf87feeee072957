"""Parameters as the Aliyun SDK flattens them, read back into container groups."""

from __future__ import annotations

import pytest
from aliyunsdkeci.request.v20180808.CreateContainerGroupRequest import CreateContainerGroupRequest

from vnode.sandbox.eci import params as p
from vnode.sandbox.eci.container_params import container_spec
from vnode.sandbox.eci.errors import EciApiError


def sdk_create_params() -> dict[str, str]:
    request = CreateContainerGroupRequest()
    request.set_ContainerGroupName("build-1")
    request.set_Containers([{
        "Name": "jnlp", "Image": "jenkins/inbound-agent", "Cpu": 0.5, "Memory": 1.0,
        "Commands": ["sh", "-c"], "Args": ["echo hi"], "Stdin": True,
        "EnvironmentVars": [{"Key": "A", "Value": "1"}, {"Key": "B", "Value": "two words"}],
        "Ports": [{"Port": 50000, "Protocol": "TCP"}],
    }])
    request.set_Tags([{"Key": "vnode.io/pod", "Value": "default/build-1"}])
    return {k: str(v) for k, v in request.get_query_params().items()}


def test_sdk_flattened_container_reads_back() -> None:
    fields = p.indexed(sdk_create_params(), "Container")
    assert len(fields) == 1
    spec = container_spec(fields[0], "Container.1")
    assert (spec.name, spec.image, spec.cpu, spec.memory) == ("jnlp", "jenkins/inbound-agent", 0.5, 1.0)
    assert spec.commands == ("sh", "-c") and spec.args == ("echo hi",)
    assert spec.env == (("A", "1"), ("B", "two words"))
    assert spec.ports == ((50000, "TCP"),) and spec.stdin is True


def test_sdk_flattened_tags_read_back() -> None:
    assert p.tags(sdk_create_params()) == [("vnode.io/pod", "default/build-1")]


def test_indexed_orders_by_number_not_text() -> None:
    params = {"Command.10": "j", "Command.2": "b", "Command.1": "a"}
    assert p.listed(params, "Command") == ["a", "b", "j"]


def test_container_without_image_is_missing_parameter() -> None:
    with pytest.raises(EciApiError) as caught:
        container_spec({"Name": "c"}, "Container.2")
    assert caught.value.code == "MissingParameter" and "Container.2.Image" in caught.value.message


@pytest.mark.parametrize(("text", "expected"), [("True", True), ("true", True), ("False", False), ("None", False)])
def test_booleans_in_python_and_other_sdk_spellings(text: str, expected: bool) -> None:
    assert p.boolean({"Tty": text}, "Tty") is expected


def test_container_group_ids_are_a_json_array() -> None:
    assert p.id_list({"ContainerGroupIds": '["eci-1","eci-2"]'}, "ContainerGroupIds") == ["eci-1", "eci-2"]


def test_more_than_twenty_ids_are_refused() -> None:
    ids = "[" + ",".join(f'"eci-{n}"' for n in range(21)) + "]"
    with pytest.raises(EciApiError, match="InvalidParameter"):
        p.id_list({"ContainerGroupIds": ids}, "ContainerGroupIds")


def test_reserved_tag_prefix_is_refused() -> None:
    with pytest.raises(EciApiError, match="InvalidParameter"):
        p.tags({"Tag.1.Key": "acs:owner", "Tag.1.Value": "x"})


def test_out_of_range_integer_is_refused() -> None:
    with pytest.raises(EciApiError, match="InvalidParameter"):
        p.integer({"Limit": "21"}, "Limit", 20, low=1, high=20)
