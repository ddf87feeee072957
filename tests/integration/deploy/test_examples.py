"""examples/: the Jenkins and Kaniko pod templates select vnode's ECI node (its labels and taint taken from vnode's
code, scheduled by the sandbox's scheduler), carry ECI annotations vnode parses, share the workspace as the
kubernetes-plugin does, pass the API server's checks; the Jenkinsfiles use the containers their templates define."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
import yaml

from tests.integration.deploy.manifests import EXAMPLES, ROOT, Obj, load_example
from tests.support.kubectl import Kubectl
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.config import DockerProviderSettings, EciProviderSettings, NodeSettings
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.node import template
from vnode.providers.base import NodeDescription, NodeResources
from vnode.providers.eci.annotations import read_options
from vnode.providers.eci.sizing import container_need, group_need

TEMPLATES = ("jenkins/pod-template.yaml", "kaniko/pod-template.yaml")
POD_EXAMPLES = ("build-pod.yaml", *TEMPLATES)
ECI = EciProviderSettings().kind
WORKSPACE_VOLUME = "workspace-volume"  # the kubernetes-plugin's name for the shared workspace


def description(provider: str) -> NodeDescription:
    return NodeDescription(provider=provider, container_runtime_version=f"{provider}://test")


def node_object(name: str, provider: str) -> Obj:
    """The Node vnode registers for `provider`, built by vnode's own template functions, Ready."""
    settings = NodeSettings(name=name)
    taint = template.taint(settings, description(provider))
    assert taint is not None
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": template.labels(settings, description(provider))},
            "spec": {"taints": [taint]},
            "status": template.status(health=template.READY, now=datetime.now(UTC), previous_conditions={},
                                      capacity=NodeResources(cpu="1000", memory="4Ti", pods="1000"),
                                      description=description(provider), settings=settings,
                                      internal_ip="127.0.0.1", kubelet_port=10250)}


def _yaml(obj: Any) -> bytes:
    return yaml.safe_dump(obj).encode()


def named(pod: Obj, name: str) -> Obj:
    """The template with a name, as the kubernetes-plugin names each agent pod."""
    out = copy.deepcopy(pod)
    out["metadata"].setdefault("name", name)
    return out


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    """core/v1 Toleration.ToleratesTaint."""
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint["key"]:
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


@pytest.mark.parametrize("path", POD_EXAMPLES)
def test_example_is_a_pod(path: str) -> None:
    pod = load_example(path)
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    assert pod["spec"]["containers"]


@pytest.mark.parametrize("path", TEMPLATES)
def test_template_selects_and_tolerates_the_eci_node(path: str) -> None:
    """nodeSelector matches the ECI node's labels and the tolerations cover its taint; a Docker node of vnode's
    does not qualify."""
    spec = load_example(path)["spec"]
    for provider, fits in ((ECI, True), (DockerProviderSettings().kind, False)):
        settings = NodeSettings()
        labels = template.labels(settings, description(provider))
        taint = template.taint(settings, description(provider))
        assert taint is not None
        selected = spec["nodeSelector"].items() <= labels.items()
        assert (selected and tolerates(spec.get("tolerations") or [], taint)) is fits, provider


@pytest.mark.kubectl
@pytest.mark.parametrize("path", TEMPLATES)
async def test_sandbox_schedules_template_onto_the_eci_node(path: str, sandbox: RunningSandbox,
                                                            kubectl: Kubectl) -> None:
    """With an ECI and a Docker virtual node registered, the sandbox's scheduler binds the pod to the ECI one."""
    async with await KubeClient.connect(sandbox.kubeconfig, qps=0, clock=SystemClock()) as admin:
        for name, provider in (("vnode-docker", DockerProviderSettings().kind), ("vnode-eci", ECI)):
            node = node_object(name, provider)
            await admin.create(paths.nodes_path(), node)
            await admin.patch(paths.node_path(name, "status"), {"status": node["status"]})
        await kubectl.run("apply", "-f", "-", stdin=_yaml(named(load_example(path), "agent")))

        async def bound() -> str | None:
            pod = await admin.get(paths.pod_path("default", "agent"))
            return str(pod["spec"].get("nodeName") or "") or None
        assert await eventually(bound, timeout_seconds=20, what=f"{path} scheduled") == "vnode-eci"


@pytest.mark.kubectl
@pytest.mark.parametrize("path", POD_EXAMPLES)
async def test_example_passes_server_dry_run(path: str, kubectl: Kubectl) -> None:
    result = await kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=_yaml(named(load_example(path), "agent")))
    assert result.stdout.endswith("created (server dry run)\n"), result.stdout


def test_jenkins_annotations_read_as_vnode_reads_them() -> None:
    """eci-use-specs gives two sizes in order; spot at market price with pay-as-you-go fallback."""
    options = read_options(load_example("jenkins/pod-template.yaml")["metadata"]["annotations"],
                           EciProviderSettings())
    assert [shape.label() for shape in options.shapes or ()] == ["2-4Gi", "4-8Gi"]
    assert options.spot is not None
    assert (options.spot.strategy, options.spot.fallback) == ("SpotAsPriceGo", True)


@pytest.mark.parametrize("path", TEMPLATES)
def test_containers_fit_the_smallest_spec(path: str) -> None:
    """The containers' requests, counted as vnode counts them, fit in the first eci-use-specs size."""
    pod = load_example(path)
    options = read_options(pod["metadata"]["annotations"], EciProviderSettings())
    assert options.shapes
    smallest = options.shapes[0]
    need = group_need([container_need(c, c["name"]) for c in pod["spec"]["containers"]], [])
    assert smallest.cpu is not None and smallest.memory is not None and need.cpu and need.memory
    assert need.cpu <= Fraction(smallest.cpu) and need.memory <= Fraction(smallest.memory)


@pytest.mark.parametrize("path", TEMPLATES)
def test_workspace_is_shared_as_the_plugin_shares_it(path: str) -> None:
    """One emptyDir `workspace-volume`, mounted at every container's workingDir: the plugin then adds neither."""
    spec = load_example(path)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[WORKSPACE_VOLUME] == {"name": WORKSPACE_VOLUME, "emptyDir": {}}
    names = {c["name"] for c in spec["containers"]}
    assert "jnlp" in names
    for container in spec["containers"]:
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert mounts.get(container["workingDir"]) == WORKSPACE_VOLUME, container["name"]


def test_kaniko_gets_registry_credentials_from_a_dockerconfigjson_secret() -> None:
    """/kaniko/.docker/config.json is the Secret's .dockerconfigjson, through a projected volume; the executor is
    the -debug image (a shell for `sh` steps) kept alive by cat on a terminal."""
    spec = load_example("kaniko/pod-template.yaml")["spec"]
    kaniko = next(c for c in spec["containers"] if c["name"] == "kaniko")
    mount = next(m for m in kaniko["volumeMounts"] if m["mountPath"] == "/kaniko/.docker")
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    [source] = volume["projected"]["sources"]
    assert source["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]
    assert kaniko["image"].endswith("-debug")
    assert kaniko["tty"] is True and kaniko["command"] == ["/busybox/cat"]


@pytest.mark.parametrize("directory", ["jenkins", "kaniko"])
def test_jenkinsfile_uses_its_template_and_containers(directory: str) -> None:
    """yamlFile names the template (from the repository root); every container() and defaultContainer exists."""
    jenkinsfile = (EXAMPLES / directory / "Jenkinsfile").read_text()
    [yaml_file] = re.findall(r"yamlFile '([^']+)'", jenkinsfile)
    assert (ROOT / yaml_file) == EXAMPLES / directory / "pod-template.yaml"
    names = {c["name"] for c in load_example(f"{directory}/pod-template.yaml")["spec"]["containers"]}
    used = set(re.findall(r"container\('([^']+)'\)", jenkinsfile)) | set(
        re.findall(r"defaultContainer '([^']+)'", jenkinsfile))
    assert used and used <= names, used - names
    if directory == "kaniko":
        assert "/kaniko/executor" in jenkinsfile and "--destination" in jenkinsfile
