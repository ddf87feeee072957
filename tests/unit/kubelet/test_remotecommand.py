"""Exec, attach and port-forward requests: paths, query flags, ports, protocol negotiation and Status bodies."""

from __future__ import annotations

import json

import pytest

from vnode.errors import BackendUnavailable, NotFound
from vnode.kubelet import remotecommand as rc
from vnode.kubelet.channels import V1, V4, V5, error_status, exit_status


@pytest.mark.parametrize(("path", "target"), [
    ("/exec/ns/pod/ctr", rc.StreamTarget("exec", "ns", "pod", None, "ctr")),
    ("/exec/ns/pod/uid-1/ctr", rc.StreamTarget("exec", "ns", "pod", "uid-1", "ctr")),
    ("/attach/ns/pod/ctr", rc.StreamTarget("attach", "ns", "pod", None, "ctr")),
    ("/portForward/ns/pod", rc.StreamTarget("portForward", "ns", "pod", None, "")),
    ("/portForward/ns/pod/uid-1", rc.StreamTarget("portForward", "ns", "pod", "uid-1", "")),
])
def test_both_path_forms(path: str, target: rc.StreamTarget) -> None:
    assert rc.match_stream_path(path) == target


@pytest.mark.parametrize("path", ["/exec/ns/pod", "/containerLogs/ns/pod/ctr", "/exec/a/b/c/d/e"])
def test_other_paths_are_not_sessions(path: str) -> None:
    assert rc.match_stream_path(path) is None


@pytest.mark.parametrize("value", ["1", "true", "True"])
def test_flag_spellings(value: str) -> None:
    options = rc.command_options("exec", [("command", "sh"), ("input", value), ("output", value)])
    assert (options.stdin, options.stdout, options.stderr) == (True, True, False)


def test_client_spellings_are_accepted_too() -> None:
    options = rc.command_options("exec", [("command", "ls"), ("stdin", "true"), ("stderr", "true")])
    assert (options.stdin, options.stdout, options.stderr) == (True, False, True)


def test_tty_drops_stderr() -> None:
    options = rc.command_options("exec", [("command", "sh"), ("output", "1"), ("error", "1"), ("tty", "1")])
    assert (options.tty, options.stderr) == (True, False)


def test_repeated_command_keeps_order() -> None:
    query = [("command", "sh"), ("command", "-c"), ("command", "echo a b"), ("output", "1")]
    assert rc.command_options("exec", query).command == ("sh", "-c", "echo a b")


def test_a_stream_is_required() -> None:
    with pytest.raises(rc.BadStreamRequest, match="at least 1 of stdin, stdout, stderr"):
        rc.command_options("exec", [("command", "sh")])


def test_exec_needs_a_command_attach_does_not() -> None:
    with pytest.raises(rc.BadStreamRequest):
        rc.command_options("exec", [("output", "1")])
    assert rc.command_options("attach", [("output", "1")]).command == ()


def test_ports_repeated_and_comma_separated() -> None:
    assert rc.forward_ports([("port", "80,8080"), ("port", "9090")]) == [80, 8080, 9090]


@pytest.mark.parametrize("value", ["http", "0", "65536"])
def test_bad_ports(value: str) -> None:
    with pytest.raises(rc.BadStreamRequest):
        rc.forward_ports([("port", value)])


def test_negotiation_takes_the_clients_first_supported() -> None:
    assert rc.negotiate([V5, V4], [V4, V5]) == V5
    assert rc.negotiate(["v9.channel.k8s.io", V4], [V5, V4]) == V4
    assert rc.negotiate(["nope"], [V5]) is None
    assert rc.negotiate([], [V5]) == ""  # no header: the v1 protocol


def test_status_bodies() -> None:
    assert json.loads(exit_status(V4, 0) or b"") == {"metadata": {}, "status": "Success"}
    failure = json.loads(exit_status(V5, 42) or b"")
    assert failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "42"}]
    assert exit_status(V1, 0) is None  # v1-v3: the error stream carries text, and only on failure
    assert exit_status(V1, 2) == b"command terminated with non-zero exit code: 2"
    assert error_status(V1, "boom") == b"boom"


def test_provider_failures_become_statuses() -> None:
    missing = json.loads(rc.failure_status(V4, NotFound('container "c" is not running')))
    assert (missing["code"], missing["reason"]) == (404, "NotFound")
    down = json.loads(rc.failure_status(V4, BackendUnavailable("engine down")))
    assert (down["code"], down["reason"]) == (500, "InternalError")
    assert "engine down" in down["message"]
