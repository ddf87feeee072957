"""CreateContainerGroup parameters, as the SDK flattens them, read into a group draft and refused like ECI does."""

from __future__ import annotations

import base64

import pytest

from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.group_params import group_draft
from vnode.sandbox.eci.model import ContainerGroup


def base(**extra: str) -> dict[str, str]:
    return {"ContainerGroupName": "build", "Container.1.Name": "main", "Container.1.Image": "busybox", **extra}


def draft(params: dict[str, str]) -> ContainerGroup:
    return group_draft(params, region_id="cn-hangzhou", zone_id="cn-hangzhou-h")


def refused(params: dict[str, str]) -> EciApiError:
    with pytest.raises(EciApiError) as caught:
        draft(params)
    return caught.value


def test_group_size_defaults_to_two_vcpu_four_gib() -> None:
    group = draft(base())
    assert (group.cpu, group.memory) == (2.0, 4.0)


def test_group_size_is_the_sum_of_its_containers() -> None:
    group = draft(base(**{"Container.1.Cpu": "0.5", "Container.1.Memory": "1", "Container.2.Name": "side",
                          "Container.2.Image": "busybox", "Container.2.Cpu": "1", "Container.2.Memory": "2"}))
    assert (group.cpu, group.memory) == (1.5, 3.0)


def test_given_group_size_wins_over_the_containers() -> None:
    group = draft(base(Cpu="4", Memory="8", **{"Container.1.Cpu": "1"}))
    assert (group.cpu, group.memory) == (4.0, 8.0)


def test_known_instance_type_sizes_the_group() -> None:
    group = draft(base(InstanceType="ecs.g6.xlarge"))
    assert (group.cpu, group.memory, group.instance_type) == (4, 16, "ecs.g6.xlarge")


def test_config_file_content_is_decoded_with_its_mode() -> None:
    content = base64.b64encode(b"key: value\n").decode()
    group = draft(base(**{"Volume.1.Name": "cfg", "Volume.1.Type": "ConfigFileVolume",
                          "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path": "app.yaml",
                          "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": content,
                          "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Mode": "0600"}))
    file = group.volumes[0].files[0]
    assert (file.path, file.content, file.mode) == ("app.yaml", b"key: value\n", 0o600)


def test_config_file_content_that_is_not_base64_is_invalid() -> None:
    error = refused(base(**{"Volume.1.Name": "cfg", "Volume.1.Type": "ConfigFileVolume",
                            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path": "a",
                            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": "not base64!"}))
    assert error.code == "InvalidParameter" and "ConfigFileToPath.1.Content" in error.message


def test_config_file_over_32_kib_is_invalid() -> None:
    content = base64.b64encode(b"x" * (32 * 1024 + 1)).decode()
    error = refused(base(**{"Volume.1.Name": "cfg", "Volume.1.Type": "ConfigFileVolume",
                            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Path": "a",
                            "Volume.1.ConfigFileVolume.ConfigFileToPath.1.Content": content}))
    assert error.code == "InvalidParameter" and "32 KiB" in error.message


def test_mount_of_an_unknown_volume_is_invalid() -> None:
    error = refused(base(**{"Container.1.VolumeMount.1.Name": "nope", "Container.1.VolumeMount.1.MountPath": "/x"}))
    assert error.code == "InvalidParameter" and "Container.1.VolumeMount.1.Name" in error.message


def test_unsupported_volume_type_is_invalid() -> None:
    error = refused(base(**{"Volume.1.Name": "v", "Volume.1.Type": "CephVolume"}))
    assert error.code == "InvalidParameter" and "Volume.1.Type" in error.message


def test_more_than_twenty_containers_is_invalid() -> None:
    params = base()
    for n in range(2, 22):
        params |= {f"Container.{n}.Name": f"c{n}", f"Container.{n}.Image": "busybox"}
    assert refused(params).code == "InvalidParameter"


def test_more_than_twenty_volumes_is_invalid() -> None:
    params = base()
    for n in range(1, 22):
        params |= {f"Volume.{n}.Name": f"v{n}", f"Volume.{n}.Type": "EmptyDirVolume"}
    assert refused(params).code == "InvalidParameter"


def test_nfs_volume_without_a_server_is_missing_parameter() -> None:
    error = refused(base(**{"Volume.1.Name": "n", "Volume.1.Type": "NFSVolume", "Volume.1.NFSVolume.Path": "/"}))
    assert error.code == "MissingParameter" and "Volume.1.NFSVolume.Server" in error.message


def test_spot_with_price_limit_needs_the_limit() -> None:
    error = refused(base(SpotStrategy="SpotWithPriceLimit"))
    assert error.code == "MissingParameter" and "SpotPriceLimit" in error.message


def test_unknown_spot_strategy_is_invalid() -> None:
    assert refused(base(SpotStrategy="Cheap")).code == "InvalidParameter"


def test_probe_with_two_handlers_is_invalid() -> None:
    error = refused(base(**{"Container.1.ReadinessProbe.TcpSocket.Port": "80",
                            "Container.1.ReadinessProbe.HttpGet.Port": "80"}))
    assert error.code == "InvalidParameter" and "ReadinessProbe" in error.message


def test_field_ref_other_than_pod_ip_is_invalid() -> None:
    error = refused(base(**{"Container.1.EnvironmentVar.1.Key": "NODE",
                            "Container.1.EnvironmentVar.1.FieldRef.FieldPath": "spec.nodeName"}))
    assert error.code == "InvalidParameter"


def test_sdk_none_for_an_unset_read_only_reads_as_false() -> None:
    group = draft(base(**{"Volume.1.Name": "w", "Volume.1.Type": "EmptyDirVolume",
                          "Container.1.VolumeMount.1.Name": "w", "Container.1.VolumeMount.1.MountPath": "/w",
                          "Container.1.VolumeMount.1.ReadOnly": "None"}))
    assert group.containers[0].volume_mounts[0].read_only is False


def test_vswitch_list_places_the_group_in_the_first() -> None:
    group = draft(base(VSwitchId="vsw-a,vsw-b"))
    assert dict(group.extra)["VSwitchId"] == "vsw-a"


def test_duplicate_container_names_are_invalid() -> None:
    error = refused(base(**{"InitContainer.1.Name": "main", "InitContainer.1.Image": "busybox"}))
    assert error.code == "InvalidParameter"
