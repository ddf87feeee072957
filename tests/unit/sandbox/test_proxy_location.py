"""Kubelet locations derived from pods/{log,exec,attach,portforward} and nodes/proxy requests."""

from __future__ import annotations

from typing import Any

import pytest

from vnode.sandbox.kubelet_location import (
    KubeletLocation,
    NoLogYet,
    ProxyError,
    kubelet_address,
    node_proxy_location,
    pod_location,
)
from vnode.sandbox.proxy import log_error


def make_node(addresses: list[tuple[str, str]] | None = None, port: int = 10250) -> dict[str, Any]:
    if addresses is None:
        addresses = [("Hostname", "vnode-1"), ("InternalIP", "10.0.0.7")]
    return {
        "metadata": {"name": "vnode-1"},
        "status": {
            "addresses": [{"type": t, "address": a} for t, a in addresses],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        },
    }


def make_pod(
    containers: tuple[str, ...] = ("main",),
    init: tuple[str, ...] = (),
    ephemeral: tuple[str, ...] = (),
    node_name: str = "vnode-1",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n} for n in containers]}
    if init:
        spec["initContainers"] = [{"name": n} for n in init]
    if ephemeral:
        spec["ephemeralContainers"] = [{"name": n} for n in ephemeral]
    if node_name:
        spec["nodeName"] = node_name
    return {"metadata": {"namespace": "ci", "name": "build-1"}, "spec": spec}


def error_of(
    pod: dict[str, Any], subresource: str, query: list[tuple[str, str]], node: Any = None
) -> ProxyError:
    with pytest.raises(ProxyError) as caught:
        pod_location(pod, make_node() if node is None else node, subresource, query)
    return caught.value


# kubelet_address


def test_address_follows_the_preferred_type_order_not_the_list_order() -> None:
    assert kubelet_address(make_node()) == ("10.0.0.7", 10250)
    assert kubelet_address(make_node(), ("Hostname", "InternalIP")) == ("vnode-1", 10250)


def test_port_comes_from_daemon_endpoints_and_defaults_when_zero() -> None:
    assert kubelet_address(make_node(port=11250)) == ("10.0.0.7", 11250)
    assert kubelet_address(make_node(port=0)) == ("10.0.0.7", 10250)
    del_endpoints = make_node()
    del del_endpoints["status"]["daemonEndpoints"]
    assert kubelet_address(del_endpoints)[1] == 10250


def test_a_node_without_a_preferred_address_is_an_internal_error() -> None:
    with pytest.raises(ProxyError) as caught:
        kubelet_address(make_node([("InternalDNS", "x.internal")]))
    assert caught.value.code == 500
    assert caught.value.message == "no preferred addresses found; known addresses: [{InternalDNS x.internal}]"
    assert "reason" not in caught.value.status()


# exec and attach


def test_exec_translates_flags_to_the_kubelet_names_with_ones_and_sorts_keys() -> None:
    query = [
        ("command", "sh"),
        ("command", "-c"),
        ("command", "echo hi & exit"),
        ("container", "main"),
        ("stdin", "true"),
        ("stdout", "True"),
        ("stderr", "false"),
        ("tty", "1"),
    ]
    location = pod_location(make_pod(), make_node(), "exec", query)
    assert location == KubeletLocation(
        "10.0.0.7",
        10250,
        "/exec/ci/build-1/main",
        (
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi & exit"),
            ("input", "1"),
            ("output", "1"),
            ("tty", "1"),
        ),
    )
    assert (
        location.target
        == "/exec/ci/build-1/main?command=sh&command=-c&command=echo+hi+%26+exit&input=1&output=1&tty=1"
    )
    assert location.url == "https://10.0.0.7:10250" + location.target


def test_any_value_but_0_and_false_turns_a_flag_on() -> None:
    query = [("stdin", ""), ("stdout", "yes"), ("stderr", "FALSE"), ("tty", "0")]
    location = pod_location(make_pod(), make_node(), "exec", query)
    assert location.query == (("input", "1"), ("output", "1"))


def test_attach_carries_no_command() -> None:
    query = [("command", "ignored"), ("stdout", "true"), ("stderr", "true")]
    location = pod_location(make_pod(), make_node(), "attach", query)
    assert location.target == "/attach/ci/build-1/main?error=1&output=1"


def test_single_container_is_the_default() -> None:
    location = pod_location(make_pod(("only",), init=("setup",)), make_node(), "exec", [("stdout", "1")])
    assert location.path == "/exec/ci/build-1/only"


def test_several_containers_need_a_name_and_the_message_lists_all_init_first() -> None:
    err = error_of(make_pod(("a", "b"), init=("i1",), ephemeral=("dbg",)), "exec", [])
    assert (err.code, err.reason) == (400, "BadRequest")
    assert err.message == "a container name must be specified for pod build-1, choose one of: [i1 a b dbg]"


def test_a_pod_without_containers_needs_a_name() -> None:
    err = error_of(make_pod(()), "attach", [])
    assert err.message == "a container name must be specified for pod build-1"


def test_unknown_container_is_refused_but_init_and_ephemeral_ones_are_valid() -> None:
    pod = make_pod(("a", "b"), init=("i1",), ephemeral=("dbg",))
    assert error_of(pod, "exec", [("container", "zz")]).message == "container zz is not valid for pod build-1"
    for name in ("i1", "dbg"):
        location = pod_location(pod, make_node(), "exec", [("container", name)])
        assert location.path.endswith("/" + name)


def test_streams_need_a_host() -> None:
    for subresource in ("exec", "attach", "portforward"):
        err = error_of(make_pod(node_name=""), subresource, [])
        assert (err.code, err.message) == (400, "pod build-1 does not have a host assigned")


def test_container_is_checked_before_the_host() -> None:
    err = error_of(make_pod(("a", "b"), node_name=""), "exec", [])
    assert err.message.startswith("a container name must be specified")


def test_a_missing_node_is_not_found() -> None:
    with pytest.raises(ProxyError) as caught:
        pod_location(make_pod(), None, "exec", [])
    assert (caught.value.code, caught.value.message) == (404, 'nodes "vnode-1" not found')


# logs


def test_log_params_are_set_only_when_given_and_sorted() -> None:
    query = [
        ("container", "main"),
        ("follow", "true"),
        ("timestamps", "1"),
        ("previous", "false"),
        ("tailLines", "5"),
        ("limitBytes", "1024"),
        ("insecureSkipTLSVerifyBackend", "true"),
    ]
    location = pod_location(make_pod(), make_node(), "log", query)
    assert (
        location.target
        == "/containerLogs/ci/build-1/main?follow=true&limitBytes=1024&tailLines=5&timestamps=true"
    )
    bare = pod_location(make_pod(), make_node(), "log", [])
    assert bare.target == "/containerLogs/ci/build-1/main"


def test_since_time_is_reformatted_as_rfc3339_seconds_in_utc() -> None:
    location = pod_location(
        make_pod(), make_node(), "log", [("sinceTime", "2026-03-01T10:00:00.123456789+02:00")]
    )
    assert location.query == (("sinceTime", "2026-03-01T08:00:00Z"),)
    seconds = pod_location(make_pod(), make_node(), "log", [("sinceSeconds", "30")])
    assert seconds.query == (("sinceSeconds", "30"),)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            [("tailLines", "-1")],
            'PodLogOptions "build-1" is invalid: tailLines: Invalid value: -1: must be greater than or '
            "equal to 0",
        ),
        (
            [("limitBytes", "0")],
            'PodLogOptions "build-1" is invalid: limitBytes: Invalid value: 0: must be greater than 0',
        ),
        (
            [("sinceSeconds", "0")],
            'PodLogOptions "build-1" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0',
        ),
        (
            [("sinceSeconds", "5"), ("sinceTime", "2026-03-01T10:00:00Z")],
            'PodLogOptions "build-1" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` '
            "may be specified",
        ),
    ],
)
def test_invalid_log_options_are_unprocessable(query: list[tuple[str, str]], message: str) -> None:
    err = error_of(make_pod(), "log", query)
    assert (err.code, err.reason, err.message) == (422, "Invalid", message)
    assert err.details["kind"] == "PodLogOptions"


def test_undecodable_log_options_are_bad_requests() -> None:
    assert error_of(make_pod(), "log", [("tailLines", "ten")]).message == (
        'strconv.ParseInt: parsing "ten": invalid syntax'
    )
    assert error_of(make_pod(), "log", [("sinceTime", "yesterday")]).code == 400


def test_validation_comes_before_the_container_check() -> None:
    err = error_of(make_pod(("a", "b")), "log", [("tailLines", "-1")])
    assert err.code == 422


def test_log_of_an_unscheduled_pod_is_no_content() -> None:
    with pytest.raises(NoLogYet) as caught:
        pod_location(make_pod(node_name=""), None, "log", [])
    assert caught.value.code == 204


def test_kubelet_log_errors_become_status_like_the_response_checker() -> None:
    not_found = log_error(404, 'pod "build-1" not found', "build-1")
    assert (not_found.code, not_found.reason) == (404, "NotFound")
    assert not_found.message == "the server could not find the requested resource ( pods/log build-1)"
    assert log_error(400, "bad", "build-1").status()["message"] == "bad"
    internal = log_error(500, "boom", "build-1")
    assert (internal.reason, internal.message) == ("InternalError", "Internal error occurred: boom")
    forbidden = log_error(403, "Forbidden (user=x)", "build-1")
    assert forbidden.message == "Forbidden (user=x) ( pods/log build-1)"


# port-forward


def test_portforward_joins_ports_and_skips_container_checks() -> None:
    pod = make_pod(("a", "b"))
    location = pod_location(pod, make_node(), "portforward", [("ports", "8080"), ("ports", "9090,7070")])
    assert location.target == "/portForward/ci/build-1?port=8080%2C9090%2C7070"
    assert location.query == (("port", "8080,9090,7070"),)
    bare = pod_location(pod, make_node(), "portforward", [])
    assert bare.target == "/portForward/ci/build-1"


def test_bad_ports_are_bad_requests() -> None:
    assert error_of(make_pod(), "portforward", [("ports", "http")]).message == (
        'cannot convert to []int32: strconv.ParseUint: parsing "http": invalid syntax'
    )
    assert error_of(make_pod(), "portforward", [("ports", "70000")]).code == 400


# node proxy


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/stats/summary", "/stats/summary"), ("/", "/"), ("", ""), ("/a/../b/", "/b/"), ("//pods", "/pods")],
)
def test_node_proxy_path_is_cleaned_and_keeps_a_trailing_slash(path: str, expected: str) -> None:
    location = node_proxy_location(make_node(), path, [("q", "a b")])
    assert (location.host, location.port, location.path) == ("10.0.0.7", 10250, expected)
    assert location.query == (("q", "a b"),)


def test_node_proxy_can_refuse_non_global_addresses() -> None:
    node = make_node([("InternalIP", "127.0.0.1")])
    assert node_proxy_location(node, "/healthz", []).host == "127.0.0.1"
    with pytest.raises(ProxyError) as caught:
        node_proxy_location(node, "/healthz", [], require_global_unicast=True)
    assert (caught.value.code, caught.value.message) == (400, "address not allowed")


def test_ipv6_hosts_are_bracketed() -> None:
    location = KubeletLocation("fd00::7", 10250, "/pods")
    assert location.url == "https://[fd00::7]:10250/pods"


def test_status_body_shape() -> None:
    status = ProxyError(400, "BadRequest", "nope").status()
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "nope",
        "reason": "BadRequest",
        "code": 400,
    }
