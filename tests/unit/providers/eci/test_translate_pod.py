"""translate.py: pod-level fields, the node's settings and imagePullSecrets on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.providers.eci.translate_pods import SETTINGS, container, plan, pod, under, wire
from vnode.config import EciProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import PodRef, RegistryAuth


def test_restart_policy_is_passed() -> None:
    assert wire(pod(restartPolicy="Never"))["RestartPolicy"] == "Never"


def test_restart_policy_defaults_to_always() -> None:
    assert wire(pod())["RestartPolicy"] == "Always"


def test_grace_period_and_active_deadline_are_passed() -> None:
    sent = wire(pod(terminationGracePeriodSeconds=5, activeDeadlineSeconds=3600))
    assert (sent["TerminationGracePeriodSeconds"], sent["ActiveDeadlineSeconds"]) == ("5", "3600")


@pytest.mark.parametrize(("policy", "sent"), [
    (None, "Default"), ("ClusterFirst", "Default"), ("ClusterFirstWithHostNet", "Default"), ("Default", "Default"),
    ("None", "None")])
def test_dns_policy_maps_onto_ecis_two(policy: str | None, sent: str) -> None:
    spec: dict[str, Any] = {"dnsPolicy": policy} if policy else {}
    assert wire(pod(**spec))["DnsPolicy"] == sent


def test_dns_config_is_passed() -> None:
    sent = wire(pod(dnsPolicy="None", dnsConfig={"nameservers": ["10.0.0.10"], "searches": ["ci.svc"],
                                                 "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}))
    assert under(sent, "DnsConfig.") == {"NameServer.1": "10.0.0.10", "Search.1": "ci.svc", "Option.1.Name": "ndots",
                                         "Option.1.Value": "2", "Option.2.Name": "rotate"}


def test_host_aliases_are_passed() -> None:
    sent = wire(pod(hostAliases=[{"ip": "10.1.2.3", "hostnames": ["git", "git.internal"]}]))
    assert under(sent, "HostAliase.") == {"1.Ip": "10.1.2.3", "1.Hostname.1": "git", "1.Hostname.2": "git.internal"}


def test_hostname_defaults_to_the_pod_name_cut_to_63() -> None:
    sent = wire(pod(ref=PodRef("ns", "a" * 62 + "-b", "uid-1")))
    assert sent["HostName"] == "a" * 62


def test_hostname_is_passed() -> None:
    assert wire(pod(hostname="builder"))["HostName"] == "builder"


def test_shared_process_namespace_and_sysctls_are_passed() -> None:
    sent = wire(pod(shareProcessNamespace=True,
                    securityContext={"sysctls": [{"name": "net.ipv4.ping_group_range", "value": "0 2147483647"}]}))
    assert (sent["ShareProcessNamespace"], sent["SecurityContext.Sysctl.1.Name"],
            sent["SecurityContext.Sysctl.1.Value"]) == ("true", "net.ipv4.ping_group_range", "0 2147483647")


@pytest.mark.parametrize("key", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces_are_refused(key: str) -> None:
    with pytest.raises(InvalidPod) as caught:
        flags: dict[str, Any] = {key: True}
        wire(pod(**flags))
    assert caught.value.field == f"spec.{key}"


def test_security_group_and_vswitch_come_from_the_settings() -> None:
    sent = wire(pod())
    assert (sent["SecurityGroupId"], sent["VSwitchId"]) == ("sg-1", "vsw-1") and "ZoneId" not in sent


def test_several_vswitches_go_with_the_schedule_strategy() -> None:
    settings = EciProviderSettings(vswitch_ids=("vsw-1", "vsw-2"), schedule_strategy="VSwitchRandom")
    sent = wire(pod(), settings)
    assert (sent["VSwitchId"], sent["ScheduleStrategy"]) == ("vsw-1,vsw-2", "VSwitchRandom")


def test_the_zone_is_sent_when_no_vswitch_decides_it() -> None:
    sent = wire(pod(), EciProviderSettings(zone_id="cn-hangzhou-k"))
    assert sent["ZoneId"] == "cn-hangzhou-k" and "VSwitchId" not in sent


def test_pull_secrets_become_credentials_for_the_registries_the_images_use() -> None:
    auths = (RegistryAuth("https://index.docker.io/v1/", "hubuser", "hubpass"),
             RegistryAuth("registry.example.com:5000", "robot", "robotpass"),
             RegistryAuth("unused.example.com", "nobody", "x"))
    resolved = pod(container("a", image="registry.example.com:5000/team/app:1"), container("b", image="maven:3"),
                   registry_auth=auths)
    assert under(wire(resolved), "ImageRegistryCredential.") == {
        "1.Server": "registry.example.com:5000", "1.UserName": "robot", "1.Password": "robotpass",
        "2.Server": "docker.io", "2.UserName": "hubuser", "2.Password": "hubpass"}


def test_a_pod_without_pull_secrets_sends_no_credentials() -> None:
    assert not under(wire(pod()), "ImageRegistryCredential.")


def test_the_plan_carries_the_fail_on_create_error_setting() -> None:
    settings = SETTINGS.model_copy(update={"fail_on_create_error": True})
    assert plan(pod(), settings).fail_on_create_error is True
