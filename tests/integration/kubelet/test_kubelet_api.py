"""vnode's kubelet API called directly (as kube-apiserver, metrics-server or a user with a token would) and through
`kubectl get --raw .../nodes/<node>/proxy/...`: authentication, authorization and the read-only endpoints."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families

from tests.support.agent import running_agent
from tests.support.kubelet_world import KubeletWorld
from tests.support.sandbox import running_sandbox
from tests.support.wait import eventually
from vnode.agent import WEBSOCKETS_FEATURE
from vnode.kube import paths


def insecure_ssl(context: ssl.SSLContext | None = None) -> ssl.SSLContext:
    """vnode's serving certificate is self-signed; kube-apiserver does not verify it either by default."""
    ctx = context or ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def get(world: KubeletWorld, path: str, *, ctx: ssl.SSLContext | None = None,
              token: str | None = None, headers: dict[str, str] | None = None,
              method: str = "GET") -> tuple[int, str]:
    all_headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    async with aiohttp.ClientSession() as http, http.request(method, world.kubelet_url + path,
                                                             ssl=ctx or insecure_ssl(),
                                                             headers=all_headers) as response:
        return response.status, await response.text()


async def test_no_credentials_is_401(world: KubeletWorld) -> None:
    assert await get(world, "/pods") == (401, "Unauthorized")


async def test_apiserver_client_certificate_is_accepted(world: KubeletWorld) -> None:
    status, body = await get(world, "/pods", ctx=insecure_ssl(world.apiserver_client_ssl()))
    assert status == 200
    assert json.loads(body)["kind"] == "PodList"


async def test_certificate_from_another_ca_is_refused(world: KubeletWorld, tmp_path: Path) -> None:
    stranger = trustme.CA().issue_cert("kube-apiserver-kubelet-client")
    ctx = insecure_ssl()
    stranger.configure_cert(ctx)
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await get(world, "/pods", ctx=ctx)


async def test_token_allowed_and_denied_by_the_api_server(world: KubeletWorld) -> None:
    """The sandbox's `viewer` may read everything (get nodes/proxy, nodes/stats) and write nothing."""
    assert (await get(world, "/pods", token=world.token("sandbox-admin")))[0] == 200
    assert (await get(world, "/pods", token=world.token("viewer")))[0] == 200
    status, body = await get(world, "/stats/summary", token=world.token("viewer"), method="POST")
    assert (status, body) == (403, "Forbidden (user=viewer, verb=create, resource=nodes, subresource(s)=[stats])\n")
    assert (await get(world, "/pods", token="not-a-token"))[0] == 401


async def test_websocket_exec_needs_create_even_as_a_get(world: KubeletWorld) -> None:
    """The kubelet would map this GET to `get`; vnode asks for `create`, so read-only proxy access gets no shell."""
    await world.create_pod("box")
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}
    status, body = await get(world, "/exec/default/box/main?command=sh&input=1&output=1", token=world.token("viewer"),
                             headers=headers)
    assert status == 403
    assert "verb=create" in body


@pytest.fixture
async def anonymous_world(tmp_path: Path) -> AsyncIterator[KubeletWorld]:
    async with running_sandbox(tmp_path / "sandbox") as sandbox, \
            running_agent(sandbox, kubelet={"anonymous": True}) as agent:
        yield KubeletWorld(sandbox, agent, tmp_path)


async def test_anonymous_when_enabled_is_authorized_like_anyone(anonymous_world: KubeletWorld) -> None:
    status, body = await get(anonymous_world, "/pods")
    assert (status, body) == (403, "Forbidden (user=system:anonymous, verb=get, resource=nodes, "
                                   "subresource(s)=[proxy])\n")


async def test_healthz(world: KubeletWorld) -> None:
    assert await get(world, "/healthz", ctx=insecure_ssl(world.apiserver_client_ssl())) == (200, "ok")


async def test_pods_and_runningpods_through_the_node_proxy(world: KubeletWorld) -> None:
    await world.create_pod("box")
    pods = await world.raw_json("/pods")
    assert pods["kind"] == "PodList" and pods["apiVersion"] == "v1"
    assert [p["metadata"]["name"] for p in pods["items"]] == ["box"]
    assert pods["items"][0]["spec"]["containers"][0]["image"] == "busybox"
    running = await world.raw_json("/runningpods/")
    assert [(p["metadata"]["name"], p["spec"]["containers"]) for p in running["items"]] == [
        ("box", [{"name": "main", "image": "busybox"}])]


async def test_stats_summary_through_the_node_proxy(world: KubeletWorld) -> None:
    pod = await world.create_pod("box")
    summary = await world.raw_json("/stats/summary")
    assert summary["node"]["nodeName"] == world.node
    [stats] = summary["pods"]
    assert stats["podRef"] == {"name": "box", "namespace": "default", "uid": pod["metadata"]["uid"]}
    [container] = stats["containers"]
    assert container["name"] == "main"
    assert container["cpu"]["usageCoreNanoSeconds"] > 0
    assert container["memory"]["workingSetBytes"] > 0


async def test_resource_metrics_as_metrics_server_reads_them(world: KubeletWorld) -> None:
    await world.create_pod("box")
    text = await world.raw("/metrics/resource")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = families["container_cpu_usage_seconds"].samples
    assert sample.labels == {"container": "main", "namespace": "default", "pod": "box"}
    assert sample.value > 0 and sample.timestamp is not None
    assert "node_memory_working_set_bytes" in families
    assert families["resource_scrape_error"].samples[0].value == 0


async def test_own_metrics(world: KubeletWorld) -> None:
    await world.create_pod("box")
    text = await world.raw("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    running = [s for s in families["vnode_pods"].samples if s.labels["phase"] == "Running"]
    assert running[0].value == 1
    calls = families["vnode_provider_call_duration_seconds"]
    assert any(s.labels.get("method") == "create_pod" for s in calls.samples)


async def test_node_declares_websockets_to_the_kubelet(world: KubeletWorld) -> None:
    node = await world.agent.client.get(paths.node_path(world.node))
    assert WEBSOCKETS_FEATURE in node["status"]["declaredFeatures"]
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == world.agent.kubelet.port


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/containerLogs/default/box/main?tailLines=x", 400, '{"message": "Unable to decode query."}'),
    ("/containerLogs/default/box/main?limitBytes=0", 422, '{"message": "Invalid request."}'),
    ("/containerLogs/default/nosuch/main", 404, 'pod "nosuch" does not exist'),
    ("/containerLogs/default/box/nosuch", 404, 'container "nosuch" not found in pod "box"'),
    ("/exec/default/nosuch/main?command=sh&output=1", 404, "pod does not exist"),
    ("/exec/default/box/main?command=sh", 400, "you must specify at least 1 of stdin, stdout, stderr"),
])
async def test_errors_like_the_kubelets(world: KubeletWorld, path: str, status: int, body: str) -> None:
    await world.create_pod("box")
    assert await get(world, path, ctx=insecure_ssl(world.apiserver_client_ssl())) == (status, body)


async def test_logs_are_chunked(world: KubeletWorld) -> None:
    await world.create_pod("box", containers=[{"name": "main", "image": "busybox",
                                               "env": [{"name": "VNODE_MOCK_LOG", "value": "hello"}]}])
    async with aiohttp.ClientSession() as http, http.get(
            f"{world.kubelet_url}/containerLogs/default/box/main",
            ssl=insecure_ssl(world.apiserver_client_ssl())) as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert await response.text() == "hello\n"


async def test_deleted_pod_leaves_pods_runningpods_and_stats(world: KubeletWorld) -> None:
    """virtual-kubelet's e2e reads these endpoints around a pod's life: present while it runs, gone after delete."""
    await world.create_pod("box")
    await world.create_pod("other")
    assert {p["podRef"]["name"] for p in (await world.raw_json("/stats/summary"))["pods"]} == {"box", "other"}
    await world.kubectl().run("delete", "pod", "box", "--wait=true")

    async def gone_everywhere() -> bool:
        stats = {p["podRef"]["name"] for p in (await world.raw_json("/stats/summary"))["pods"]}
        running = {p["metadata"]["name"] for p in (await world.raw_json("/runningpods/"))["items"]}
        pods = {p["metadata"]["name"] for p in (await world.raw_json("/pods"))["items"]}
        return stats == running == pods == {"other"}
    await eventually(gone_everywhere, timeout_seconds=20, what="box to leave every kubelet endpoint")
