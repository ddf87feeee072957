"""spec.py: a pod's containers as engine create bodies, and the fields it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnode.config import DockerProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import EnvVar, PodRef, ResolvedPod, ResolvedVolume
from vnode.providers.docker import naming, spec
from vnode.providers.docker.probes import probe_specs, probes_from_label

SETTINGS = DockerProviderSettings(volumes_dir=Path("/v"))
REF = PodRef("ns", "pod", "uid-1")


def _pod(container: dict[str, Any], **pod_spec: Any) -> ResolvedPod:
    body = {"metadata": {"namespace": "ns", "name": "pod", "uid": "uid-1"},
            "spec": {"containers": [container], "volumes": [{"name": "work", "emptyDir": {}},
                                                            {"name": "conf", "configMap": {"name": "c"}}],
                     **pod_spec}}
    return ResolvedPod(REF, body, env={"main": (EnvVar("A", "1"), EnvVar("B", "x$(A)"))},
                       volumes={"work": ResolvedVolume("work", "emptyDir"), "conf": ResolvedVolume("conf", "files")})


def _config(container: dict[str, Any], settings: DockerProviderSettings = SETTINGS, **pod_spec: Any) -> dict[str, Any]:
    pod = _pod({"name": "main", "image": "img:1", **container}, **pod_spec)
    spec.validate_pod(pod, settings)
    return spec.container_config(pod, pod.containers[0], where="spec.containers[0]", role="app", attempt=2,
                                 node="n1", sandbox_id="sb", volume_paths={"work": "/v/uid-1/work",
                                                                           "conf": "/v/uid-1/conf"},
                                 settings=settings)


def test_command_replaces_the_entrypoint_and_args_the_cmd_with_env_references_expanded() -> None:
    config = _config({"command": ["sh", "-c"], "args": ["echo $(A) $$(A) $(NOPE)"]})
    assert (config["Entrypoint"], config["Cmd"]) == (["sh", "-c"], ["echo 1 $(A) $(NOPE)"])


def test_env_tty_stdin_and_working_dir_are_passed() -> None:
    config = _config({"tty": True, "stdin": True, "workingDir": "/w"})
    assert (config["Env"], config["Tty"], config["OpenStdin"], config["WorkingDir"]) == (
        ["A=1", "B=x$(A)"], True, True, "/w")


def test_containers_join_the_sandbox_network_namespace_and_carry_the_pod_labels() -> None:
    config = _config({})
    assert config["HostConfig"]["NetworkMode"] == "container:sb"
    assert naming.key_of(config["Labels"]) == naming.ContainerKey(REF, "app", "main", 2)


def test_volume_mounts_become_binds_with_sub_path_and_read_only() -> None:
    config = _config({"volumeMounts": [{"name": "work", "mountPath": "/w", "subPath": "a/b"},
                                       {"name": "work", "mountPath": "/r", "readOnly": True},
                                       {"name": "conf", "mountPath": "/etc/c"}]})
    assert config["HostConfig"]["Binds"] == ["/v/uid-1/work/a/b:/w", "/v/uid-1/work:/r:ro", "/v/uid-1/conf:/etc/c:ro"]


def test_limits_become_nano_cpus_and_memory_bytes() -> None:
    host = _config({"resources": {"limits": {"cpu": "1500m", "memory": "64Mi"}}})["HostConfig"]
    assert (host["NanoCpus"], host["Memory"]) == (1_500_000_000, 64 * 2**20)


def test_security_context_sets_user_read_only_root_and_capabilities() -> None:
    config = _config({"securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True,
                                          "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}},
                     securityContext={"runAsGroup": 2000})
    host = config["HostConfig"]
    assert (config["User"], host["ReadonlyRootfs"], host["CapAdd"], host["CapDrop"]) == (
        "1000:2000", True, ["NET_ADMIN"], ["ALL"])


def test_privileged_is_refused_unless_allowed() -> None:
    with pytest.raises(InvalidPod) as caught:
        _config({"securityContext": {"privileged": True}})
    assert caught.value.field == "spec.containers[0].securityContext.privileged"


def test_privileged_is_passed_when_allowed() -> None:
    allowed = SETTINGS.model_copy(update={"allow_privileged": True})
    assert _config({"securityContext": {"privileged": True}}, allowed)["HostConfig"]["Privileged"] is True


@pytest.mark.parametrize(("container", "field"), [
    ({"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}, "spec.containers[0].lifecycle"),
    ({"livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}},
     "spec.containers[0].livenessProbe.successThreshold"),
    ({"readinessProbe": {"grpc": {"port": 9000}}}, "spec.containers[0].readinessProbe.grpc"),
    ({"ports": [{"containerPort": 80, "hostPort": 80}]}, "spec.containers[0].ports[0].hostPort"),
    ({"volumeMounts": [{"name": "work", "mountPath": "/w", "subPath": "../x"}]},
     "spec.containers[0].volumeMounts[0].subPath"),
    ({"volumeMounts": [{"name": "nope", "mountPath": "/w"}]}, "spec.containers[0].volumeMounts[0].name"),
    ({"resources": {"limits": {"cpu": "lots"}}}, "spec.containers[0].resources"),
])
def test_unsupported_fields_are_refused_by_name(container: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidPod) as caught:
        _config(container)
    assert caught.value.field == field


def test_host_network_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        _config({}, hostNetwork=True)
    assert caught.value.field == "spec.hostNetwork"


def test_sandbox_uses_the_pause_image_on_the_pod_network_and_records_the_restart_policy() -> None:
    config = spec.sandbox_config(_pod({"name": "main", "image": "i"}, restartPolicy="Never"), node="n1",
                                 settings=SETTINGS)
    assert (config["Image"], config["HostConfig"]["NetworkMode"]) == (SETTINGS.pause_image, SETTINGS.network)
    assert config["Labels"][naming.LABEL_RESTART_POLICY] == "Never"


def test_a_sandbox_records_the_pods_termination_grace_period() -> None:
    config = spec.sandbox_config(_pod({"name": "main", "image": "i"}, terminationGracePeriodSeconds=7), node="n1",
                                 settings=SETTINGS)
    assert config["Labels"][naming.LABEL_GRACE_PERIOD] == "7"


PROBED = {"readinessProbe": {"httpGet": {"path": "/ready", "port": "web"}, "periodSeconds": 2},
          "livenessProbe": {"exec": {"command": ["true"]}},
          "ports": [{"name": "web", "containerPort": 8080}, {"containerPort": 9090}]}


def test_an_app_container_with_probes_carries_them_and_its_named_ports_as_a_label() -> None:
    label = _config(PROBED)["Labels"][naming.LABEL_PROBES]
    carried = probes_from_label(label, "label")
    assert probe_specs(carried, "label") == probe_specs(PROBED, "spec.containers[0]")
    assert carried["ports"] == [{"name": "web", "containerPort": 8080}]


def test_a_container_without_probes_carries_no_probes_label() -> None:
    assert naming.LABEL_PROBES not in _config({"ports": [{"name": "web", "containerPort": 8080}]})["Labels"]


def test_a_restart_clone_keeps_the_probes_label() -> None:
    old = _config(PROBED)
    clone = spec.clone_config({"Config": {**old, "Labels": old["Labels"]}, "HostConfig": old["HostConfig"]},
                              node="n1", key=naming.ContainerKey(REF, "app", "main", 3))
    assert clone["Labels"][naming.LABEL_PROBES] == old["Labels"][naming.LABEL_PROBES]
    assert naming.key_of(clone["Labels"]) == naming.ContainerKey(REF, "app", "main", 3)


@pytest.mark.parametrize(("image", "policy"), [("busybox", "Always"), ("busybox:latest", "Always"),
                                               ("busybox:1", "IfNotPresent"), ("reg:5000/busybox", "Always"),
                                               ("b@sha256:ab", "IfNotPresent")])
def test_pull_policy_defaults_like_the_api_server(image: str, policy: str) -> None:
    assert spec.pull_policy({"image": image}) == policy


@given(st.text(alphabet=st.characters(blacklist_characters="$")))
def test_expand_leaves_text_without_references_unchanged(text: str) -> None:
    assert spec.expand(text, {"A": "1"}) == text
