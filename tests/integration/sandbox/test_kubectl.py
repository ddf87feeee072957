"""Real kubectl (the oldest and newest supported minors) against the sandbox API server."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually

pytestmark = pytest.mark.kubectl

POD_YAML = """
apiVersion: v1
kind: Pod
metadata:
  name: build-7
  labels: {jenkins/label: maven}
spec:
  containers:
  - name: maven
    image: maven:3.9
    command: [cat]
    tty: true
"""

NODE_YAML = """
apiVersion: v1
kind: Node
metadata:
  name: vnode-1
  labels: {type: virtual-kubelet, kubernetes.io/role: agent}
"""


@pytest.fixture(params=["1.27", "1.33"])
async def kubectl(request: pytest.FixtureRequest, sandbox: RunningSandbox) -> AsyncIterator[Kubectl]:
    yield Kubectl(kubectl_binary(request.param), sandbox.kubeconfig)


async def ready_node(api: client.ApiClient, name: str = "vnode-1") -> None:
    await client.CoreV1Api(api).patch_node_status(name, {"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
        "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "100"},
        "capacity": {"cpu": "16", "memory": "64Gi", "pods": "100"},
        "nodeInfo": {"kubeletVersion": "v1.33.0-vnode-0.1.0", "osImage": "vnode", "kernelVersion": "",
                     "containerRuntimeVersion": "mock://0.1.0", "operatingSystem": "linux",
                     "architecture": "amd64"},
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}]}})


async def test_create_and_get_json(kubectl: Kubectl) -> None:
    """`kubectl create -f` stores the pod with the defaults kubelets rely on; `get -o json` returns it."""
    await kubectl.run("create", "-f", "-", stdin=POD_YAML.encode())
    pod = (await kubectl.run("get", "pod", "build-7", "-o", "json")).json()
    assert pod["metadata"]["labels"] == {"jenkins/label": "maven"}
    assert pod["status"]["phase"] == "Pending"
    assert pod["spec"]["restartPolicy"] == "Always"
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


async def test_create_twice_conflicts(kubectl: Kubectl) -> None:
    """A second `kubectl create` of the same name fails with AlreadyExists."""
    await kubectl.run("create", "-f", "-", stdin=POD_YAML.encode())
    again = await kubectl.run("create", "-f", "-", stdin=POD_YAML.encode(), check=False)
    assert again.returncode != 0
    assert 'pods "build-7" already exists' in again.stderr


async def test_apply_creates_then_patches(kubectl: Kubectl) -> None:
    """`kubectl apply` creates, then a changed manifest is applied as a patch that keeps the object."""
    first = await kubectl.run("apply", "-f", "-", stdin=POD_YAML.encode())
    assert "pod/build-7 created" in first.stdout
    uid = (await kubectl.run("get", "pod", "build-7", "-o", "json")).json()["metadata"]["uid"]
    changed = POD_YAML.replace("{jenkins/label: maven}", "{jenkins/label: maven, build: '8'}")
    second = await kubectl.run("apply", "-f", "-", stdin=changed.encode())
    assert "pod/build-7 configured" in second.stdout
    pod = (await kubectl.run("get", "pod", "build-7", "-o", "json")).json()
    assert pod["metadata"]["uid"] == uid
    assert pod["metadata"]["labels"] == {"jenkins/label": "maven", "build": "8"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod["metadata"]["annotations"]


async def test_get_nodes_shows_status_and_version(kubectl: Kubectl, api: client.ApiClient) -> None:
    """`kubectl get nodes` prints the server-side table: Ready status, roles and kubelet version."""
    await kubectl.run("create", "-f", "-", stdin=NODE_YAML.encode())
    await ready_node(api)
    out = (await kubectl.run("get", "nodes")).stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert out[1].split()[:3] == ["vnode-1", "Ready", "agent"]
    assert out[1].split()[-1] == "v1.33.0-vnode-0.1.0"


async def test_get_watch_sees_updates(kubectl: Kubectl, api: client.ApiClient) -> None:
    """`kubectl get -w` prints a new row when the pod changes."""
    await kubectl.run("create", "-f", "-", stdin=POD_YAML.encode())
    process = await kubectl.start("get", "pod", "build-7", "-w", "--no-headers")
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        assert first.split()[:3] == [b"build-7", b"0/1", b"Pending"]
        await client.CoreV1Api(api).patch_namespaced_pod_status("build-7", "default", {"status": {
            "phase": "Running", "containerStatuses": [{"name": "maven", "ready": True, "restartCount": 0,
                                                       "image": "maven:3.9", "imageID": "",
                                                       "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}})
        second = await asyncio.wait_for(process.stdout.readline(), 30)
        assert second.split()[:3] == [b"build-7", b"1/1", b"Running"]
    finally:
        process.terminate()
        await process.wait()


async def test_describe_pod_shows_events(kubectl: Kubectl, api: client.ApiClient) -> None:
    """`kubectl describe pod` lists the pod's events (here the scheduler's)."""
    await kubectl.run("create", "-f", "-", stdin=NODE_YAML.encode())
    await ready_node(api)
    await kubectl.run("create", "-f", "-", stdin=POD_YAML.encode())

    async def described() -> str | None:
        out = (await kubectl.run("describe", "pod", "build-7")).stdout
        return out if "Successfully assigned default/build-7 to vnode-1" in out else None

    out = await eventually(described, what="the Scheduled event in describe")
    assert "Scheduled" in out
    assert "Node:" in out and "vnode-1" in out


async def test_graceful_delete_waits_for_the_kubelet(kubectl: Kubectl, api: client.ApiClient) -> None:
    """`kubectl delete` of a bound pod leaves it Terminating until the node's grace-0 delete; kubectl waits."""
    await kubectl.run("create", "-f", "-", stdin=POD_YAML.replace("spec:\n", "spec:\n  nodeName: vnode-1\n",
                                                                   1).encode())
    deleting = await kubectl.start("delete", "pod", "build-7")
    core = client.CoreV1Api(api)

    async def terminating() -> Any:
        pod = await core.read_namespaced_pod("build-7", "default")
        return pod if pod.metadata.deletion_timestamp else None

    pod = await eventually(terminating, what="deletionTimestamp")
    assert deleting.returncode is None  # kubectl is still waiting for the pod to go
    await core.delete_namespaced_pod("build-7", "default", body=client.V1DeleteOptions(
        grace_period_seconds=0, preconditions=client.V1Preconditions(uid=pod.metadata.uid)))
    out, _ = await asyncio.wait_for(deleting.communicate(), 30)
    assert deleting.returncode == 0
    assert b'pod "build-7" deleted' in out


async def test_force_delete_removes_at_once(kubectl: Kubectl) -> None:
    """`kubectl delete --force --grace-period=0` removes a bound pod without waiting for the node."""
    await kubectl.run("create", "-f", "-", stdin=POD_YAML.replace("spec:\n", "spec:\n  nodeName: vnode-1\n",
                                                                   1).encode())
    await kubectl.run("delete", "pod", "build-7", "--force", "--grace-period=0")
    left = await kubectl.run("get", "pod", "build-7", check=False)
    assert left.returncode != 0
    assert 'pods "build-7" not found' in left.stderr


# `kubectl create <kind>` writes through client-go's typed clients, which send protobuf from 1.32 on.

async def test_create_configmap_stores_literal_data(kubectl: Kubectl) -> None:
    """`kubectl create configmap --from-literal` succeeds and `get -o json` shows the data."""
    await kubectl.run("create", "configmap", "settings", "--from-literal=a=b", "--from-literal=empty=")
    configmap = (await kubectl.run("get", "configmap", "settings", "-o", "json")).json()
    assert configmap["data"] == {"a": "b", "empty": ""}
    assert configmap["metadata"]["namespace"] == "default"


async def test_create_secret_generic_stores_base64_data(kubectl: Kubectl) -> None:
    """`kubectl create secret generic --type` succeeds, keeping the type, with data the base64 of the literal."""
    await kubectl.run("create", "secret", "generic", "token", "--from-literal=t=x", "--type=Opaque")
    secret = (await kubectl.run("get", "secret", "token", "-o", "json")).json()
    assert secret["data"] == {"t": base64.b64encode(b"x").decode()}
    assert secret["type"] == "Opaque"


async def test_create_secret_docker_registry_stores_the_config(kubectl: Kubectl) -> None:
    """`kubectl create secret docker-registry` stores a kubernetes.io/dockerconfigjson secret with the auth."""
    await kubectl.run("create", "secret", "docker-registry", "reg", "--docker-server=r.example",
                      "--docker-username=u", "--docker-password=p")
    secret = (await kubectl.run("get", "secret", "reg", "-o", "json")).json()
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert config["auths"]["r.example"] == {"username": "u", "password": "p",
                                            "auth": base64.b64encode(b"u:p").decode()}


async def test_create_namespace_then_serviceaccount_in_it(kubectl: Kubectl) -> None:
    """`kubectl create namespace` and `create serviceaccount -n` succeed and the account lands in the namespace."""
    await kubectl.run("create", "namespace", "team-a")
    await kubectl.run("create", "serviceaccount", "robot", "-n", "team-a")
    account = (await kubectl.run("get", "serviceaccount", "robot", "-n", "team-a", "-o", "json")).json()
    assert account["metadata"]["namespace"] == "team-a"
