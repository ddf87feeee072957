"""The PodController's rules, each against the sandbox and the mock provider."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio import watch as kwatch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.agent import running_agent
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.providers.base import PodRef, PodStatusUpdate, ProviderEvent
from vnode.providers.mock import MockProvider

NS = "default"


def pod(name: str = "build-1", containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "nodeName": "vnode", "containers": containers or [{"name": "main", "image": "busybox:1.36"}], **spec}}


async def read(core: client.CoreV1Api, name: str = "build-1") -> Any:
    return await core.read_namespaced_pod(name, NS)


async def wait_phase(core: client.CoreV1Api, phase: str, name: str = "build-1", timeout_seconds: float = 10) -> Any:
    async def probe() -> Any:
        current = await read(core, name)
        return current if current.status.phase == phase else None

    return await eventually(probe, timeout_seconds=timeout_seconds, what=f"{name} {phase}")


async def events_for(core: client.CoreV1Api, name: str) -> dict[str, Any]:
    found = await core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}")
    return {e.reason: e for e in found.items}


async def wait_event(core: client.CoreV1Api, name: str, reason: str) -> Any:
    async def probe() -> Any:
        return (await events_for(core, name)).get(reason)

    return await eventually(probe, what=f"event {reason} on {name}")


def mock(agent: Any) -> MockProvider:
    assert isinstance(agent.provider, MockProvider)
    return agent.provider


async def test_running_phase_and_ready_arrive_in_one_write(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """The first pod version that says Running already has Ready=True and running containers (Jenkins waits on
    Ready and gives up on pods that look Pending while they run)."""
    watch_api = client.CoreV1Api(core.api_client)
    seen: list[Any] = []
    async with running_agent(sandbox):
        async def collect() -> None:
            async with kwatch.Watch().stream(watch_api.list_namespaced_pod, NS, timeout_seconds=10) as events:
                async for event in events:
                    seen.append(event["object"])
                    if event["object"].status.phase == "Running":
                        return

        collector = asyncio.create_task(collect())
        await core.create_namespaced_pod(NS, pod())
        await asyncio.wait_for(collector, 15)
    first_running = next(p for p in seen if p.status.phase == "Running")
    assert {c.type: c.status for c in first_running.status.conditions}["Ready"] == "True"
    assert first_running.status.container_statuses[0].state.running is not None
    assert first_running.status.container_statuses[0].ready is True


async def test_transient_create_failure_is_retried_with_a_reason(sandbox: RunningSandbox,
                                                                 core: client.CoreV1Api) -> None:
    """A retryable backend error leaves an Event and a status reason, then the retry runs the pod."""
    async with running_agent(sandbox, provider={"kind": "mock", "transient_create_failures": 2}) as agent:
        await core.create_namespaced_pod(NS, pod())
        await wait_phase(core, "Running")
        failed = await wait_event(core, "build-1", "ProviderCreateFailed")
        assert "will retry" in failed.message
        assert [c for c in mock(agent).calls if c[0] == "create_pod"] == [("create_pod", "default/build-1")] * 3


async def test_pod_waiting_for_the_backend_says_why(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """While creates keep failing the pod is Pending with reason ProviderUnavailable, not silently Pending."""
    async with running_agent(sandbox, provider={"kind": "mock", "transient_create_failures": 1000}):
        await core.create_namespaced_pod(NS, pod())

        async def explained() -> Any:
            current = await read(core)
            return current if current.status.reason == "ProviderUnavailable" else None

        current = await eventually(explained, what="a Pending reason")
        assert current.status.phase == "Pending"
        assert current.status.container_statuses[0].state.waiting.reason == "ProviderUnavailable"


async def test_unsupported_field_fails_the_pod_naming_the_field(sandbox: RunningSandbox,
                                                               core: client.CoreV1Api) -> None:
    """A spec the backend cannot run fails fast with the field in the message, and an Event."""
    async with running_agent(sandbox):
        await core.create_namespaced_pod(NS, pod(volumes=[{"name": "host", "hostPath": {"path": "/etc"}}]))
        failed = await wait_phase(core, "Failed")
        assert failed.status.reason == "UnsupportedPodSpec"
        assert "spec.volumes[0].hostPath" in failed.status.message
        await wait_event(core, "build-1", "ProviderCreateFailed")


async def test_mandatory_configmap_missing_waits_then_runs(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A missing mandatory ConfigMap: Event + CreateContainerConfigError, retried until the ConfigMap exists."""
    containers = [{"name": "main", "image": "busybox:1.36", "env": [{"name": "MODE", "valueFrom": {
        "configMapKeyRef": {"name": "build-settings", "key": "mode"}}}]}]
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod(containers=containers))
        event = await wait_event(core, "build-1", "MandatoryConfigMapNotFound")
        assert "build-settings" in event.message
        current = await read(core)
        assert current.status.phase == "Pending"
        assert current.status.container_statuses[0].state.waiting.reason == "CreateContainerConfigError"
        await core.create_namespaced_config_map(NS, {"metadata": {"name": "build-settings"}, "data": {"mode": "ci"}})
        running = await wait_phase(core, "Running")
        resolved = mock(agent).resolved(running.metadata.uid)
        assert resolved is not None
        assert [(v.name, v.value) for v in resolved.env["main"]] == [("MODE", "ci")]


async def test_mandatory_secret_missing_is_reported(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A missing mandatory Secret gives MandatorySecretNotFound and the pod is not handed to the backend."""
    containers = [{"name": "main", "image": "busybox:1.36", "env": [{"name": "TOKEN", "valueFrom": {
        "secretKeyRef": {"name": "registry", "key": "token"}}}]}]
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod(containers=containers))
        await wait_event(core, "build-1", "MandatorySecretNotFound")
        assert mock(agent).resolved((await read(core)).metadata.uid) is None


async def test_optional_missing_references_are_skipped_with_an_event(sandbox: RunningSandbox,
                                                                    core: client.CoreV1Api) -> None:
    """Optional ConfigMap and Secret references that do not exist: Events, and the pod runs without them."""
    containers = [{"name": "main", "image": "busybox:1.36", "env": [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "a", "optional": True}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "b", "optional": True}}},
        {"name": "C", "value": "plain"}]}]
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod(containers=containers))
        running = await wait_phase(core, "Running")
        reasons = await events_for(core, "build-1")
        assert {"OptionalConfigMapNotFound", "OptionalSecretNotFound"} <= set(reasons)
        resolved = mock(agent).resolved(running.metadata.uid)
        assert resolved is not None and [v.name for v in resolved.env["main"]] == ["C"]


async def test_secret_env_is_resolved_and_marked_sensitive(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """secretKeyRef values are decoded and flagged sensitive; fieldRef and $(VAR) expansion work too."""
    await core.create_namespaced_secret(NS, {"metadata": {"name": "agent"}, "data": {"secret": "czNjcjN0"}})
    containers = [{"name": "jnlp", "image": "jenkins/inbound-agent:3355", "env": [
        {"name": "JENKINS_SECRET", "valueFrom": {"secretKeyRef": {"name": "agent", "key": "secret"}}},
        {"name": "JENKINS_AGENT_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "value": "hello $(JENKINS_AGENT_NAME)"}]}]
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod(containers=containers))
        running = await wait_phase(core, "Running")
        resolved = mock(agent).resolved(running.metadata.uid)
        assert resolved is not None
        env = {v.name: v for v in resolved.env["jnlp"]}
        assert env["JENKINS_SECRET"].value == "s3cr3t" and env["JENKINS_SECRET"].sensitive
        assert env["GREETING"].value == "hello build-1" and not env["GREETING"].sensitive


async def test_service_account_token_volume_is_resolved(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """The API server's kube-api-access volume arrives as files: a TokenRequest token, ca.crt and namespace."""
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod())
        running = await wait_phase(core, "Running")
        resolved = mock(agent).resolved(running.metadata.uid)
        assert resolved is not None
        volume = next(v for name, v in resolved.volumes.items() if name.startswith("kube-api-access-"))
        files = {f.path: f.content for f in volume.files}
        assert set(files) == {"token", "ca.crt", "namespace"}
        assert files["namespace"] == b"default" and files["ca.crt"].startswith(b"-----BEGIN CERTIFICATE-----")
        review = await client.AuthenticationV1Api(core.api_client).create_token_review(
            {"spec": {"token": files["token"].decode()}})
        assert review.status.user.username == "system:serviceaccount:default:default"


async def test_metadata_only_updates_cost_no_provider_call(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """Jenkins re-annotates live agent pods every minute: that must not reach the backend."""
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod())
        await wait_phase(core, "Running")
        calls_before = list(mock(agent).calls)
        for n in range(3):
            await core.patch_namespaced_pod("build-1", NS, {"metadata": {"annotations": {
                "kubernetes.jenkins.io/last-refresh": str(n)}}})
        # A spec change afterwards proves the controller processed the annotation updates before it.
        await core.patch_namespaced_pod("build-1", NS, {"spec": {"activeDeadlineSeconds": 3600}})

        async def spec_synced() -> bool:
            return len(mock(agent).calls) > len(calls_before)

        await eventually(spec_synced, what="the spec change to reach the provider")
        assert mock(agent).calls[len(calls_before):] == [("update_pod", "default/build-1")]


async def test_image_change_is_passed_to_the_provider(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A new container image restarts that container (restartCount 1) with the new image."""
    async with running_agent(sandbox):
        await core.create_namespaced_pod(NS, pod())
        await wait_phase(core, "Running")
        await core.patch_namespaced_pod("build-1", NS, {"spec": {"containers": [
            {"name": "main", "image": "busybox:1.37"}]}})

        async def restarted() -> Any:
            status = (await read(core)).status.container_statuses[0]
            return status if status.restart_count == 1 else None

        status = await eventually(restarted, what="restartCount 1")
        assert status.image == "busybox:1.37"


async def test_active_deadline_fails_the_pod(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """Past activeDeadlineSeconds the pod is Failed with DeadlineExceeded and stopped in the backend."""
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod(activeDeadlineSeconds=1))
        failed = await wait_phase(core, "Failed", timeout_seconds=15)
        assert failed.status.reason == "DeadlineExceeded"
        assert ("delete_pod", "default/build-1") in mock(agent).calls


async def test_completed_pod_succeeds_and_stays_terminal(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A restartPolicy Never pod whose container exits 0 ends Succeeded and is never moved back."""
    containers = [{"name": "main", "image": "busybox:1.36", "env": [{"name": "VNODE_MOCK_RUN_SECONDS",
                                                                      "value": "0.2"}]}]
    async with running_agent(sandbox):
        await core.create_namespaced_pod(NS, pod(containers=containers, restartPolicy="Never"))
        done = await wait_phase(core, "Succeeded")
        terminated = done.status.container_statuses[0].state.terminated
        assert terminated.exit_code == 0 and terminated.reason == "Completed"
        assert {c.type: c.status for c in done.status.conditions}["Ready"] == "False"


async def test_failing_container_fails_the_pod(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A restartPolicy Never container exiting 3 makes the pod Failed with reason Error and exit code 3."""
    containers = [{"name": "main", "image": "busybox:1.36", "env": [
        {"name": "VNODE_MOCK_RUN_SECONDS", "value": "0.1"}, {"name": "VNODE_MOCK_EXIT_CODE", "value": "3"}]}]
    async with running_agent(sandbox):
        await core.create_namespaced_pod(NS, pod(containers=containers, restartPolicy="Never"))
        failed = await wait_phase(core, "Failed")
        terminated = failed.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (3, "Error")


async def test_daemonset_pods_are_not_run(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A DaemonSet pod that tolerates the taint stays Pending with a reason and one Event; nothing is created."""
    body = pod("kube-proxy-x")
    body["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy",
                                            "uid": "0e9c0f7a-0000-4000-8000-000000000001", "controller": True}]
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, body)
        event = await wait_event(core, "kube-proxy-x", "DaemonSetPodNotRun")
        current = await read(core, "kube-proxy-x")
        assert current.status.phase == "Pending" and current.status.reason == "DaemonSetPodNotRun"
        assert event.count == 1
        assert not [c for c in mock(agent).calls if c[0] == "create_pod"]


async def test_force_delete_stops_the_backend_pod(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A pod removed with grace 0 (kubectl delete --force) is deleted from the backend too."""
    async with running_agent(sandbox) as agent:
        created = await core.create_namespaced_pod(NS, pod())
        await wait_phase(core, "Running")
        await core.delete_namespaced_pod("build-1", NS, grace_period_seconds=0)

        async def stopped() -> bool:
            return mock(agent).resolved(created.metadata.uid) is None

        await eventually(stopped, what="the backend pod to go")
        assert ("delete_pod", "default/build-1") in mock(agent).calls
        try:
            await read(core)
            raise AssertionError("pod still exists")
        except ApiException as exc:
            assert exc.status == 404


async def test_events_of_updates_replaced_before_their_write_are_all_recorded(
        sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """The status queue keeps only a pod's latest update; the events of the ones it replaced still reach the API."""
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod(NS, pod())
        running = await wait_phase(core, "Running")
        ref = PodRef(NS, "build-1", running.metadata.uid)
        # Two updates in one go: the second replaces the first before the queue writes anything.
        agent.pods.notify(PodStatusUpdate(ref, "Running", events=(
            ProviderEvent("Warning", "NoStock", "2-4Gi: out of stock, trying 4-8Gi"),)))
        agent.pods.notify(PodStatusUpdate(ref, "Running", events=(
            ProviderEvent("Normal", "AutoInstanceTypeMatch", "matched ecs.c6.xlarge"),)))
        await wait_event(core, "build-1", "AutoInstanceTypeMatch")
        await wait_event(core, "build-1", "NoStock")
