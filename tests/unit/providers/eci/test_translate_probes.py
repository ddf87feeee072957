"""probes.py through plan_create: readiness/liveness/startup probes and lifecycle hooks on the wire."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.providers.eci.translate_pods import container, pod, under, wire
from vnode.errors import InvalidPod


def main(**fields: Any) -> dict[str, str]:
    return under(wire(pod(container(ports=[{"name": "http", "containerPort": 8080}], **fields))), "Container.1.")


def test_http_readiness_probe_with_a_named_port_and_timings() -> None:
    sent = main(readinessProbe={"httpGet": {"path": "/ready", "port": "http"}, "initialDelaySeconds": 3,
                                "periodSeconds": 5, "timeoutSeconds": 2, "successThreshold": 1,
                                "failureThreshold": 4})
    assert under(sent, "ReadinessProbe.") == {
        "HttpGet.Path": "/ready", "HttpGet.Port": "8080", "HttpGet.Scheme": "HTTP", "InitialDelaySeconds": "3",
        "PeriodSeconds": "5", "TimeoutSeconds": "2", "SuccessThreshold": "1", "FailureThreshold": "4"}


def test_tcp_liveness_probe() -> None:
    assert under(main(livenessProbe={"tcpSocket": {"port": 8080}}), "LivenessProbe.") == {"TcpSocket.Port": "8080"}


def test_exec_probe() -> None:
    sent = main(readinessProbe={"exec": {"command": ["cat", "/tmp/ready"]}})
    assert under(sent, "ReadinessProbe.") == {"Exec.Command.1": "cat", "Exec.Command.2": "/tmp/ready"}


@pytest.mark.parametrize("probe", ["readinessProbe", "livenessProbe", "startupProbe"])
def test_grpc_probes_are_refused_naming_the_field(probe: str) -> None:
    with pytest.raises(InvalidPod, match="gRPC") as caught:
        main(**{probe: {"grpc": {"port": 9000}}})
    assert caught.value.field == f"spec.containers[0].{probe}.grpc"


def test_a_startup_probe_holds_the_liveness_probe_back_by_its_window() -> None:
    sent = main(startupProbe={"httpGet": {"path": "/up", "port": 8080}, "initialDelaySeconds": 5,
                              "periodSeconds": 10, "failureThreshold": 30},
                livenessProbe={"httpGet": {"path": "/live", "port": 8080}, "initialDelaySeconds": 1})
    assert sent["LivenessProbe.InitialDelaySeconds"] == str(1 + 5 + 10 * 30)
    assert not any(k.startswith("StartupProbe") for k in sent)


def test_probe_headers_are_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        main(readinessProbe={"httpGet": {"path": "/", "port": 8080,
                                         "httpHeaders": [{"name": "Host", "value": "x"}]}})
    assert caught.value.field == "spec.containers[0].readinessProbe.httpGet.httpHeaders"


def test_an_unknown_named_port_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        main(livenessProbe={"tcpSocket": {"port": "metrics"}})
    assert caught.value.field == "spec.containers[0].livenessProbe.tcpSocket.port"


def test_post_start_exec_hook() -> None:
    sent = main(lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "touch /ready"]}}})
    assert under(sent, "LifecyclePostStartHandler") == {"Exec.1": "sh", "Exec.2": "-c", "Exec.3": "touch /ready"}


def test_pre_stop_http_hook_with_host_and_headers() -> None:
    sent = main(lifecycle={"preStop": {"httpGet": {"path": "/drain", "port": "http", "host": "127.0.0.1",
                                                   "scheme": "HTTPS",
                                                   "httpHeaders": [{"name": "X-Stop", "value": "1"}]}}})
    assert under(sent, "LifecyclePreStopHandler") == {
        "HttpGetPath": "/drain", "HttpGetPort": "8080", "HttpGetScheme": "HTTPS", "HttpGetHost": "127.0.0.1",
        "HttpGetHttpHeader.1.Name": "X-Stop", "HttpGetHttpHeader.1.Value": "1"}


def test_pre_stop_tcp_hook() -> None:
    sent = main(lifecycle={"preStop": {"tcpSocket": {"port": 8080}}})
    assert under(sent, "LifecyclePreStopHandler") == {"TcpSocketPort": "8080"}


def test_a_sleep_hook_is_refused() -> None:
    with pytest.raises(InvalidPod) as caught:
        main(lifecycle={"preStop": {"sleep": {"seconds": 5}}})
    assert caught.value.field == "spec.containers[0].lifecycle.preStop.sleep"
