"""The RBAC in deploy/ grants vnode exactly the API calls it makes: statically (no wildcard, the same set as the
code's calls, names tied to the node) and for real (vnode runs as its ServiceAccount against the sandbox, with the
manifests' Roles and bindings deciding every request it sends)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from itertools import product
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.integration.deploy.manifests import NAMESPACE, SERVICE_ACCOUNT, Build
from tests.integration.deploy.rbac import Call, Grants, RbacAuthorizer
from tests.support.agent import FAST_NODE, FAST_PODS
from tests.support.kubectl import Kubectl
from tests.support.running import running
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.agent import VnodeAgent, build_provider
from vnode.clock import SystemClock
from vnode.config import load_settings
from vnode.errors import NotFound
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.node.lease import NAMESPACE as LEASE_NAMESPACE
from vnode.sandbox.auth import StaticTokens

pytestmark = pytest.mark.kubectl

USER = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
WAIT = 20.0
# Every call `vnode run` makes, read from the code: (API group, resource[/subresource], verb) → where.
VNODE_CALLS: dict[tuple[str, str, str], str] = {
    ("", "nodes", "create"): "node/agent.py: register the Node",
    ("", "nodes", "get"): "node/agent.py: read it before adopting",
    ("", "nodes", "update"): "node/agent.py: adopt an existing Node (PUT labels and taint)",
    ("", "nodes/status", "patch"): "node/agent.py: heartbeat and conditions",
    ("coordination.k8s.io", "leases", "create"): "node/lease.py: first renewal",
    ("coordination.k8s.io", "leases", "get"): "node/lease.py: re-read on conflict",
    ("coordination.k8s.io", "leases", "update"): "node/lease.py: renewals (PUT)",
    ("", "pods", "list"): "kube/informer.py: the node's pods (fieldSelector spec.nodeName)",
    ("", "pods", "watch"): "kube/informer.py",
    ("", "pods", "patch"): "pods/sync.py: vnode.io/* annotations",
    ("", "pods", "delete"): "pods/sync.py: final removal after the containers are gone",
    ("", "pods/status", "patch"): "pods/sync.py: pod status",
    ("", "configmaps", "get"): "pods/source.py: env and volumes",
    ("", "secrets", "get"): "pods/source.py: env, volumes, imagePullSecrets",
    ("", "serviceaccounts/token", "create"): "pods/source.py: projected service account tokens",
    ("", "events", "create"): "kube/events.py",
    ("", "events", "patch"): "kube/events.py: a repeated event bumps count",
    ("authentication.k8s.io", "tokenreviews", "create"): "kubelet/auth.py: bearer tokens",
    ("authorization.k8s.io", "subjectaccessreviews", "create"): "kubelet/auth.py: Webhook authorization",
}
# The calls the scenario below cannot help making (adoption, annotation patches and event repeats need more).
EXERCISED = set(VNODE_CALLS) - {("", "nodes", "update"), ("", "pods", "patch"), ("", "events", "patch")}


def granted(built: Build) -> set[tuple[str, str, str]]:
    return {perm for _, rule in Grants(built.objects).rules_for(USER)
            for perm in product(rule.get("apiGroups") or [], rule.get("resources") or [], rule.get("verbs") or [])}


def rbac_rules(built: Build) -> list[dict[str, Any]]:
    return [rule for o in built.objects if o["kind"] in ("Role", "ClusterRole") for rule in o.get("rules") or []]


def test_no_rule_uses_a_wildcard(built: Build) -> None:
    """No "*" in any verb, group, resource or name, and no non-resource URLs."""
    rules = rbac_rules(built)
    assert rules
    for rule in rules:
        for field in ("verbs", "apiGroups", "resources", "resourceNames"):
            assert "*" not in (rule.get(field) or []), rule
        assert not rule.get("nonResourceURLs"), rule


def test_grants_are_exactly_the_calls_vnode_makes(built: Build) -> None:
    """The ServiceAccount's permissions, through its bindings, equal the set of calls in vnode's code."""
    assert granted(built) == set(VNODE_CALLS)


def test_named_grants_follow_the_node_name(built: Build) -> None:
    """Node reads/updates, status patches and Lease renewals are limited to the Deployment's node name; the Lease
    only in kube-node-lease."""
    grants, node = Grants(built.objects), built.node_name
    named = [rule for rule in rbac_rules(built) if rule.get("resourceNames")]
    assert {tuple(rule["resourceNames"]) for rule in named} == {(node,)}
    lease = Call("update", "coordination.k8s.io", "leases", LEASE_NAMESPACE, node)
    assert grants.allows(USER, (), lease)
    assert not grants.allows(USER, (), Call("update", "coordination.k8s.io", "leases", "default", node))
    assert not grants.allows(USER, (), Call("update", "coordination.k8s.io", "leases", LEASE_NAMESPACE, "other"))
    assert grants.allows(USER, (), Call("patch", "", "nodes/status", "", node))
    assert not grants.allows(USER, (), Call("patch", "", "nodes/status", "", "control-plane-1"))
    assert not grants.allows(USER, (), Call("update", "", "nodes", "", "control-plane-1"))


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """The admin kubeconfig's cluster, with a bearer token for its user."""
    cluster = yaml.safe_load(admin_kubeconfig.read_text())["clusters"][0]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": SERVICE_ACCOUNT, "context": {"cluster": cluster["name"], "user": SERVICE_ACCOUNT}}],
        "current-context": SERVICE_ACCOUNT}))
    return path


async def service_account_kubeconfig(kubectl: Kubectl, sandbox: RunningSandbox, path: Path) -> Path:
    """A kubeconfig with a TokenRequest token of vnode's ServiceAccount, as its pod gets one mounted."""
    token = (await kubectl.run("create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, "--duration=1h")).stdout.strip()
    return token_kubeconfig(sandbox.kubeconfig, token, path)


@contextlib.asynccontextmanager
async def vnode_as_service_account(built: Build, sandbox: RunningSandbox, kubeconfig: Path,
                                   tmp_path: Path) -> AsyncIterator[VnodeAgent]:
    """vnode with the built config file and node name, its API credentials those of the ServiceAccount."""
    config = tmp_path / "vnode.yaml"
    config.write_text(built.config_map()["data"]["vnode.yaml"])
    settings = load_settings(config_file=config, overrides={
        "kube": {"kubeconfig": kubeconfig, "qps": 0},
        "node": {**FAST_NODE, "name": built.node_name}, "pods": FAST_PODS,
        "kubelet": {"port": 0, "address": "127.0.0.1", "client_ca_file": sandbox.state_dir / "pki" / "ca.crt"}})
    clock = SystemClock()
    async with await KubeClient.connect(kubeconfig, qps=0, clock=clock) as client:
        agent = VnodeAgent(settings, client=client, provider=build_provider(settings, clock), clock=clock)
        async with running(agent.run(), agent.ready, name="vnode as its service account", timeout_seconds=WAIT):
            yield agent


def workload(node: str) -> list[dict[str, Any]]:
    """A pod using every kind of reference vnode resolves: ConfigMap and Secret env, a projected token, a pull
    secret."""
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app-config", "namespace": "default"},
         "data": {"greeting": "hello"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secret", "namespace": "default"},
         "stringData": {"password": "s3cret"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred", "namespace": "default"},
         "type": "kubernetes.io/dockerconfigjson",
         "stringData": {".dockerconfigjson": '{"auths": {"registry.example.com": {"auth": "dTpw"}}}'}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "rbac-probe", "namespace": "default"}, "spec": {
            "nodeName": node, "tolerations": [{"operator": "Exists"}], "imagePullSecrets": [{"name": "regcred"}],
            "containers": [{"name": "main", "image": "registry.example.com/app:1", "env": [
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "greeting"}}},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "password"}}},
                {"name": "VNODE_MOCK_LOG", "value": "hello from the rbac probe"}],
                "volumeMounts": [{"name": "token", "mountPath": "/var/run/token"}]}],
            "volumes": [{"name": "token", "projected": {"sources": [{"serviceAccountToken": {
                "path": "token", "audience": "vault", "expirationSeconds": 3600}}]}}]}},
    ]


async def test_vnode_runs_within_its_rbac(builds: dict[str, Build], sandbox: RunningSandbox, kubectl: Kubectl,
                                          tmp_path: Path) -> None:
    """vnode as its ServiceAccount registers, renews its Lease, runs a pod with ConfigMap/Secret/token references,
    serves `kubectl logs` and a bearer-token request, and finalizes the pod's deletion; RBAC from the manifests
    allows every request it sends, and those requests are the calls listed for it."""
    built = builds["base"]
    served = [o for o in built.objects if o["kind"] in ("Namespace", "ServiceAccount", "ConfigMap")]
    await kubectl.run("apply", "-f", "-", stdin=built.dump(served))
    authorizer = RbacAuthorizer(Grants(built.objects), USER, sandbox.server.authorizer)
    # The sandbox stores RBAC objects but does not enforce them: its authorizer is swapped for one that reads the
    # manifests' RBAC.
    sandbox.server.authorizer = authorizer
    kubeconfig = await service_account_kubeconfig(kubectl, sandbox, tmp_path / "vnode-kubeconfig")

    def denied() -> list[Call]:
        return [call for call, allowed in authorizer.decisions if not allowed]

    try:
        async with (await KubeClient.connect(sandbox.kubeconfig, qps=0, clock=SystemClock()) as admin,
                    vnode_as_service_account(built, sandbox, kubeconfig, tmp_path) as agent):
            await kubectl.run("apply", "-f", "-", stdin=built.dump(workload(built.node_name)))

            async def running_pod() -> bool:
                assert denied() == [], "RBAC denied vnode's requests"
                pod = await admin.get(paths.pod_path("default", "rbac-probe"))
                return (pod.get("status") or {}).get("phase") == "Running"
            await eventually(running_pod, timeout_seconds=WAIT, what="rbac-probe Running")
            # kube-apiserver's kubelet-client certificate: vnode authorizes it with a SubjectAccessReview.
            logs = await kubectl.run("logs", "rbac-probe")
            assert logs.stdout == "hello from the rbac probe\n"
            # A bearer token at the kubelet API: a TokenReview, then a SubjectAccessReview.
            viewer = StaticTokens.load(sandbox.state_dir / "tokens.csv").token_for("viewer")
            async with aiohttp.ClientSession() as http, http.get(
                    f"https://127.0.0.1:{agent.kubelet.port}/pods", ssl=False,
                    headers={"Authorization": f"Bearer {viewer}"}) as answer:
                assert answer.status == 200
            await kubectl.run("delete", "pod", "rbac-probe", "--wait=false")

            async def pod_gone() -> bool:
                assert denied() == [], "RBAC denied vnode's requests"
                try:
                    await admin.get(paths.pod_path("default", "rbac-probe"))
                except NotFound:
                    return True
                return False
            await eventually(pod_gone, timeout_seconds=WAIT, what="rbac-probe deleted by vnode")
    except TimeoutError as exc:
        raise AssertionError(f"vnode did not come up as its ServiceAccount; RBAC denied {denied()}") from exc
    assert denied() == []
    used = {call.permission for call, _ in authorizer.decisions}
    assert used <= set(VNODE_CALLS), used - set(VNODE_CALLS)
    assert used >= EXERCISED, EXERCISED - used
