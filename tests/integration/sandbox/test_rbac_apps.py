"""RBAC (Role, ClusterRole, RoleBinding, ClusterRoleBinding) and apps/v1 Deployments through real kubectl.

kubectl 1.27 writes JSON; 1.33 writes protobuf for `kubectl create <kind>` and JSON for apply, so both run every test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox

pytestmark = pytest.mark.kubectl

RBAC_YAML = """
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
# apiGroup spelled out: the server defaults it on User and Group subjects, and `subjects` is replaced as a whole
# by kubectl's patch, so leaving it out makes every re-apply "configured" (against kube-apiserver too).
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
- {kind: ServiceAccount, name: robot, namespace: ci}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:node-reader"}
rules:
- {apiGroups: [""], resources: [nodes], verbs: [get]}
- {nonResourceURLs: [/healthz], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: read-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:node-reader"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: ops}
"""

DEPLOYMENT_YAML = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  strategy: {type: Recreate}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{name: http, containerPort: 80}]
        env: [{name: MODE, value: demo}]
"""


@pytest.fixture(params=["1.27", "1.33"])
async def kubectl(request: pytest.FixtureRequest, sandbox: RunningSandbox) -> AsyncIterator[Kubectl]:
    yield Kubectl(kubectl_binary(request.param), sandbox.kubeconfig)


def header(output: str) -> list[str]:
    return output.splitlines()[0].split()


async def test_api_resources_lists_rbac_and_deployments(kubectl: Kubectl) -> None:
    """Discovery serves the four RBAC kinds (two namespaced) and deployments (short name deploy) at their groups."""
    rows = {line.split()[0]: line.split() for line in
            (await kubectl.run("api-resources", "--no-headers")).stdout.splitlines()}
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    for resource, namespaced, kind in (("roles", "true", "Role"), ("rolebindings", "true", "RoleBinding"),
                                       ("clusterroles", "false", "ClusterRole"),
                                       ("clusterrolebindings", "false", "ClusterRoleBinding")):
        assert rows[resource] == [resource, "rbac.authorization.k8s.io/v1", namespaced, kind]


async def test_get_all_includes_deployments(kubectl: Kubectl) -> None:
    """deployments are in the `all` category, so `kubectl get all` lists them."""
    await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT_YAML.encode())
    out = (await kubectl.run("get", "all")).stdout
    assert "deployment.apps/web" in out


async def test_typed_create_commands_store_what_they_say(kubectl: Kubectl) -> None:
    """`kubectl create role|rolebinding|clusterrole|clusterrolebinding|deployment` (protobuf from 1.32) succeed."""
    await kubectl.run("create", "role", "pod-reader", "--verb=get,list", "--resource=pods")
    await kubectl.run("create", "rolebinding", "rb", "--role=pod-reader", "--user=alice",
                      "--serviceaccount=default:robot")
    await kubectl.run("create", "clusterrole", "reader", "--verb=get", "--resource=nodes")
    await kubectl.run("create", "clusterrolebinding", "crb", "--clusterrole=reader", "--group=ops")
    await kubectl.run("create", "deployment", "web", "--image=nginx:1.27", "--port=80", "--replicas=2")
    role = (await kubectl.run("get", "role", "pod-reader", "-o", "json")).json()
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    binding = (await kubectl.run("get", "rolebinding", "rb", "-o", "json")).json()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
                                   {"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]
    cluster_binding = (await kubectl.run("get", "clusterrolebinding", "crb", "-o", "json")).json()
    assert cluster_binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}]
    deployment = (await kubectl.run("get", "deployment", "web", "-o", "json")).json()
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80,
                                                                                  "protocol": "TCP"}]


async def test_get_wide_prints_kubectls_columns(kubectl: Kubectl) -> None:
    """Deployments: READY ready/desired and the wide columns; bindings: ROLE and subjects; roles: CREATED AT."""
    await kubectl.run("apply", "-f", "-", stdin=(RBAC_YAML + "---" + DEPLOYMENT_YAML).encode())
    deployments = (await kubectl.run("get", "deploy", "-o", "wide")).stdout
    assert header(deployments) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                                   "SELECTOR"]
    row = deployments.splitlines()[1].split()
    assert row[:4] == ["web", "0/2", "0", "0"] and row[5:] == ["nginx", "nginx:1.27", "app=web"]
    bindings = (await kubectl.run("get", "rolebindings", "-o", "wide")).stdout
    assert header(bindings) == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert bindings.splitlines()[1].split() == ["read-pods", "Role/pod-reader",
                                                 bindings.splitlines()[1].split()[2], "alice", "ci/robot"]
    roles = (await kubectl.run("get", "roles", "-o", "wide")).stdout
    assert header(roles) == ["NAME", "CREATED", "AT"]
    assert roles.splitlines()[1].split()[0] == "pod-reader"
    cluster = (await kubectl.run("get", "clusterrolebinding", "read-nodes")).stdout
    assert cluster.splitlines()[1].split()[:2] == ["read-nodes", "ClusterRole/system:node-reader"]


async def test_apply_twice_is_idempotent(kubectl: Kubectl) -> None:
    """A second `kubectl apply` of the same manifests changes nothing: every object `unchanged`, same uid."""
    manifests = (RBAC_YAML + "---" + DEPLOYMENT_YAML).encode()
    first = await kubectl.run("apply", "-f", "-", stdin=manifests)
    assert first.stdout.count(" created") == 5
    uid = (await kubectl.run("get", "deploy", "web", "-o", "jsonpath={.metadata.uid}")).stdout
    second = await kubectl.run("apply", "-f", "-", stdin=manifests)
    assert second.stdout.count(" unchanged") == 5, second.stdout
    deployment = (await kubectl.run("get", "deploy", "web", "-o", "json")).json()
    assert deployment["metadata"]["uid"] == uid and deployment["metadata"]["generation"] == 1


async def test_apply_patches_a_deployment_container_by_name(kubectl: Kubectl) -> None:
    """A changed image and env are applied as a strategic merge patch: containers merge by name, env by name."""
    await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT_YAML.encode())
    changed = DEPLOYMENT_YAML.replace("nginx:1.27", "nginx:1.28").replace("value: demo}", "value: live}")
    assert "deployment.apps/web configured" in (await kubectl.run("apply", "-f", "-", stdin=changed.encode())).stdout
    deployment = (await kubectl.run("get", "deploy", "web", "-o", "json")).json()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["env"]) == ("nginx:1.28", [{"name": "MODE", "value": "live"}])
    assert deployment["metadata"]["generation"] == 2


async def test_server_dry_run_stores_nothing(kubectl: Kubectl) -> None:
    out = (await kubectl.run("apply", "--dry-run=server", "-f", "-",
                             stdin=(RBAC_YAML + "---" + DEPLOYMENT_YAML).encode())).stdout
    assert out.count("created (server dry run)") == 5
    left = await kubectl.run("get", "deploy,roles,rolebindings", check=False)
    assert "No resources found" in left.stdout + left.stderr


async def test_role_ref_change_is_rejected(kubectl: Kubectl) -> None:
    """kube-apiserver refuses to point a binding at another role (422 "cannot change roleRef"); it stays as it was."""
    await kubectl.run("apply", "-f", "-", stdin=RBAC_YAML.encode())
    changed = RBAC_YAML.replace("kind: Role, name: pod-reader}", "kind: ClusterRole, name: view}")
    result = await kubectl.run("apply", "-f", "-", stdin=changed.encode(), check=False)
    assert result.returncode != 0
    assert ('The RoleBinding "read-pods" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:'
            '"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"view"}: cannot change roleRef') in result.stderr
    binding = (await kubectl.run("get", "rolebinding", "read-pods", "-o", "json")).json()
    assert binding["roleRef"]["name"] == "pod-reader"


async def test_role_without_verbs_is_invalid(kubectl: Kubectl) -> None:
    no_verbs = RBAC_YAML.split("---")[0].replace(", verbs: [get, list]", "")
    result = await kubectl.run("apply", "-f", "-", stdin=no_verbs.encode(), check=False)
    assert result.returncode != 0
    assert "rules[0].verbs: Required value: verbs must contain at least one value" in result.stderr


async def test_deployment_selector_must_match_template_labels(kubectl: Kubectl) -> None:
    mismatched = DEPLOYMENT_YAML.replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: api}}")
    result = await kubectl.run("apply", "-f", "-", stdin=mismatched.encode(), check=False)
    assert result.returncode != 0
    assert ('spec.template.metadata.labels: Invalid value: map[string]string{"app":"api"}: `selector` does not '
            "match template `labels`") in result.stderr
    assert (await kubectl.run("get", "deploy", "web", check=False)).returncode != 0


async def test_deployment_selector_is_immutable(kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT_YAML.encode())
    moved = DEPLOYMENT_YAML.replace("{app: web}}", "{app: web2}}")
    result = await kubectl.run("apply", "-f", "-", stdin=moved.encode(), check=False)
    assert result.returncode != 0
    assert "spec.selector: Invalid value: v1.LabelSelector{" in result.stderr
    assert "field is immutable" in result.stderr


async def test_scale_sets_replicas_through_the_scale_subresource(kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", "-", stdin=DEPLOYMENT_YAML.encode())
    assert "deployment.apps/web scaled" in (await kubectl.run("scale", "deploy/web", "--replicas=5")).stdout
    deployment = (await kubectl.run("get", "deploy", "web", "-o", "json")).json()
    assert deployment["spec"]["replicas"] == 5 and deployment["metadata"]["generation"] == 2


async def test_delete_removes_every_kind(kubectl: Kubectl) -> None:
    manifests = (RBAC_YAML + "---" + DEPLOYMENT_YAML).encode()
    await kubectl.run("apply", "-f", "-", stdin=manifests)
    deleted = await kubectl.run("delete", "-f", "-", stdin=manifests)
    assert deleted.stdout.count(" deleted") == 5
    for kind, name in (("deploy", "web"), ("role", "pod-reader"), ("rolebinding", "read-pods"),
                       ("clusterrole", "system:node-reader"), ("clusterrolebinding", "read-nodes")):
        gone = await kubectl.run("get", kind, name, check=False)
        assert gone.returncode != 0 and "NotFound" in gone.stderr, (kind, gone.stderr)
