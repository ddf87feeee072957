"""specs.py through plan_create: a container's fields as Container.N.* on the wire, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.providers.eci.translate_pods import container, plan, pod, under, wire
from vnode.errors import InvalidPod
from vnode.providers.base import EnvVar, RegistryAuth, ResolvedVolume


def main(**fields: Any) -> dict[str, str]:
    """Container.1.* of a one-container pod."""
    return under(wire(pod(container(**fields))), "Container.1.")


def test_image_name_pull_policy_working_dir_and_termination_message_are_passed() -> None:
    sent = main(imagePullPolicy="Always", workingDir="/w", terminationMessagePath="/dev/termination-log",
                terminationMessagePolicy="FallbackToLogsOnError")
    assert {k: sent[k] for k in ("Name", "Image", "ImagePullPolicy", "WorkingDir", "TerminationMessagePath",
                                 "TerminationMessagePolicy")} == {
        "Name": "main", "Image": "registry.example.com/team/img:1", "ImagePullPolicy": "Always", "WorkingDir": "/w",
        "TerminationMessagePath": "/dev/termination-log", "TerminationMessagePolicy": "FallbackToLogsOnError"}


def test_command_and_args_go_apart_with_env_references_expanded() -> None:
    sent = under(wire(pod(container(command=["sh", "-c"], args=["echo $(A) $$(A) $(NOPE)"]),
                          env={"main": (EnvVar("A", "1"),)})), "Container.1.")
    assert (sent["Command.1"], sent["Command.2"], sent["Arg.1"]) == ("sh", "-c", "echo 1 $(A) $(NOPE)")


def test_ten_args_stay_args() -> None:
    sent = main(args=[str(n) for n in range(10)])
    assert [sent[f"Arg.{n}"] for n in range(1, 11)] == [str(n) for n in range(10)] and "Command.1" not in sent


def test_more_than_ten_args_are_folded_into_the_command_keeping_argv_exactly() -> None:
    sent = main(command=["python", "-m", "tool"], args=[f"a {n}" for n in range(11)])
    argv = ["python", "-m", "tool", *[f"a {n}" for n in range(11)]]
    assert [sent.get(f"Command.{n}") for n in range(1, len(argv) + 2)] == [*argv, None]
    assert not any(k.startswith("Arg.") for k in sent)


def test_more_than_ten_args_without_a_command_are_refused() -> None:
    with pytest.raises(InvalidPod, match="at most 10 args") as caught:
        main(args=[str(n) for n in range(11)])
    assert caught.value.field == "spec.containers[0].args"


def test_resolved_env_is_sent_in_order() -> None:
    sent = under(wire(pod(env={"main": (EnvVar("B", "2"), EnvVar("A", "1"))})), "Container.1.EnvironmentVar.")
    assert sent == {"1.Key": "B", "1.Value": "2", "2.Key": "A", "2.Value": "1"}


def test_a_secret_value_hides_the_containers_env_from_describe_answers() -> None:
    sent = under(wire(pod(env={"main": (EnvVar("TOKEN", "hunter2", sensitive=True),)})), "Container.1.")
    assert sent["EnvironmentVarHide"] == "true"


def test_env_without_secrets_is_not_hidden() -> None:
    assert "EnvironmentVarHide" not in under(wire(pod(env={"main": (EnvVar("A", "1"),)})), "Container.1.")


def test_the_plans_repr_shows_no_secret_value_or_registry_password() -> None:
    created = plan(pod(env={"main": (EnvVar("TOKEN", "hunter2", sensitive=True),)},
                       registry_auth=(RegistryAuth("registry.example.com", "robot", "pa55word"),)))
    assert "hunter2" not in repr(created) and "pa55word" not in repr(created)


def test_a_pod_ip_field_ref_is_left_for_eci_to_fill_in() -> None:
    spec = container(env=[{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                     args=["--bind=$(MY_IP)"])
    sent = under(wire(pod(spec, env={"main": (EnvVar("MY_IP", ""),)})), "Container.1.")
    assert (sent["EnvironmentVar.1.Key"], sent["EnvironmentVar.1.FieldRef.FieldPath"], sent["Arg.1"]) == (
        "MY_IP", "status.podIP", "--bind=$(MY_IP)")
    assert "EnvironmentVar.1.Value" not in sent


def test_ports_are_sent_with_their_protocol() -> None:
    sent = main(ports=[{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}])
    assert under(sent, "Port.") == {"1.Port": "8080", "1.Protocol": "TCP", "2.Port": "53", "2.Protocol": "UDP"}


@pytest.mark.parametrize(("port", "field"), [
    ({"containerPort": 80, "hostPort": 80}, "spec.containers[0].ports[0].hostPort"),
    ({"containerPort": 80, "protocol": "SCTP"}, "spec.containers[0].ports[0].protocol"),
    ({"containerPort": 10250}, "spec.containers[0].ports[0].containerPort"),
])
def test_ports_eci_cannot_expose_are_refused(port: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPod) as caught:
        main(ports=[port])
    assert caught.value.field == field


def test_mounts_carry_sub_path_and_read_only_and_files_volumes_are_read_only() -> None:
    spec = container(volumeMounts=[{"name": "work", "mountPath": "/w", "subPath": "a/b"},
                                   {"name": "work", "mountPath": "/r", "readOnly": True},
                                   {"name": "conf", "mountPath": "/etc/c"}])
    resolved = pod(spec, volumes=[ResolvedVolume("work", "emptyDir"), ResolvedVolume("conf", "files")])
    assert under(wire(resolved), "Container.1.VolumeMount.") == {
        "1.Name": "work", "1.MountPath": "/w", "1.SubPath": "a/b", "1.ReadOnly": "false",
        "2.Name": "work", "2.MountPath": "/r", "2.ReadOnly": "true",
        "3.Name": "conf", "3.MountPath": "/etc/c", "3.ReadOnly": "true"}


def test_sub_path_expr_is_expanded_from_the_env() -> None:
    spec = container(volumeMounts=[{"name": "work", "mountPath": "/w", "subPathExpr": "logs/$(POD)"}])
    resolved = pod(spec, env={"main": (EnvVar("POD", "web-0"),)}, volumes=[ResolvedVolume("work", "emptyDir")])
    assert wire(resolved)["Container.1.VolumeMount.1.SubPath"] == "logs/web-0"


def test_a_mount_of_an_undefined_volume_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        main(volumeMounts=[{"name": "nope", "mountPath": "/n"}])
    assert caught.value.field == "spec.containers[0].volumeMounts[0].name"


def test_requests_become_cores_and_gib() -> None:
    sent = main(resources={"requests": {"cpu": "500m", "memory": "1536Mi"}})
    assert (sent["Cpu"], sent["Memory"]) == ("0.5", "1.5")


def test_cpu_and_memory_round_up_to_three_decimals() -> None:
    sent = main(resources={"requests": {"cpu": "1m", "memory": "100M"}})  # 100e6 B = 0.0931 GiB
    assert (sent["Cpu"], sent["Memory"]) == ("0.001", "0.094")


def test_a_limit_above_the_request_is_what_the_container_gets() -> None:
    sent = main(resources={"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "3Gi"}})
    assert (sent["Cpu"], sent["Memory"]) == ("2.0", "3.0")


def test_a_container_without_resources_sends_no_cpu_or_memory() -> None:
    sent = main()
    assert "Cpu" not in sent and "Memory" not in sent


def test_security_context_subset_with_the_pods_values_as_defaults() -> None:
    spec = container(securityContext={"runAsGroup": 3000, "readOnlyRootFilesystem": True,
                                      "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}})
    sent = under(wire(pod(spec, securityContext={"runAsUser": 1000, "runAsNonRoot": True})), "Container.1.")
    assert {k: v for k, v in sent.items() if k.startswith("SecurityContext")} == {
        "SecurityContext.RunAsUser": "1000", "SecurityContext.ReadOnlyRootFilesystem": "true",
        "SecurityContext.Capability.Add.1": "NET_ADMIN", "SecurityContextRunAsGroup": "3000",
        "SecurityContextRunAsNonRoot": "true"}


def test_privileged_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidPod, match="^ECI does not run privileged containers$") as caught:
        main(securityContext={"privileged": True})
    assert caught.value.field == "spec.containers[0].securityContext.privileged"


def test_run_as_non_root_with_user_zero_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        main(securityContext={"runAsNonRoot": True, "runAsUser": 0})
    assert caught.value.field == "spec.containers[0].securityContext.runAsUser"


def test_stdin_stdin_once_and_tty_are_passed() -> None:
    sent = main(stdin=True, stdinOnce=True, tty=True)
    assert (sent["Stdin"], sent["StdinOnce"], sent["Tty"]) == ("true", "true", "true")


def test_a_container_without_an_image_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        wire(pod({"name": "main"}))
    assert caught.value.field == "spec.containers[0].image"


def test_init_containers_are_sent_as_init_containers_in_order() -> None:
    sent = wire(pod(container(), init=[container("first", command=["a"]), container("second", command=["b"])]))
    assert (sent["InitContainer.1.Name"], sent["InitContainer.1.Command.1"], sent["InitContainer.2.Name"]) == (
        "first", "a", "second")


def test_a_sidecar_init_container_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        wire(pod(container(), init=[container("proxy", restartPolicy="Always")]))
    assert caught.value.field == "spec.initContainers[0].restartPolicy"


def test_more_than_twenty_containers_are_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        wire(pod(*[container(f"c{n}") for n in range(21)]))
    assert caught.value.field == "spec.containers"
