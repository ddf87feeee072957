"""`kubectl apply -k deploy/base` and `deploy/overlays/eci` against the sandbox API server: a server-side dry run,
then a real apply read back and applied again; plus an offline schema check of field names (the sandbox validates
what kube-apiserver's strategies check, not unknown fields)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.integration.deploy.manifests import NAMESPACE, Build, Obj, served_kinds
from tests.integration.deploy.schema import schema_errors
from tests.support.kubectl import Kubectl

pytestmark = pytest.mark.kubectl


async def apply_namespace(kubectl: Kubectl, built: Build) -> None:
    # A dry run does not create the namespace, so objects in it would be NotFound (kube-apiserver does the same).
    await kubectl.run("apply", "-f", "-", stdin=built.dump([built.one("Namespace", NAMESPACE)]))


def described(obj: Obj) -> str:
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def reported(obj: Obj) -> str:
    """How `kubectl apply` names an object in its output: kind.group/name (no group for core kinds)."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def missing(want: Any, got: Any, path: str = "") -> list[str]:
    """Where `got` lacks what `want` says: maps compared key by key, lists item by item; server defaults are extra."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [path or "."]
        return [m for key, value in want.items() for m in missing(value, got.get(key), f"{path}.{key}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [path]
        return [m for i, (w, g) in enumerate(zip(want, got, strict=True)) for m in missing(w, g, f"{path}[{i}]")]
    return [] if want == got else [path]


async def test_sandbox_serves_every_kind_built(kubectl: Kubectl, built: Build) -> None:
    """Discovery lists every (apiVersion, kind) the kustomization builds: none is left to `no matches for kind`."""
    served = served_kinds((await kubectl.run("api-resources", "--no-headers")).stdout)
    assert {(o["apiVersion"], o["kind"]) for o in built.objects} - served == set()


async def test_whole_kustomization_passes_server_dry_run(kubectl: Kubectl, built: Build) -> None:
    """`kubectl apply -k DIR --dry-run=server` as the deploy README has users run it: every object is accepted and
    nothing is stored."""
    await apply_namespace(kubectl, built)
    result = await kubectl.run("apply", "-k", str(built.directory), "--dry-run=server")
    lines = result.stdout.splitlines()
    for obj in built.objects:
        assert any(line.startswith(reported(obj) + " ") and line.endswith("(server dry run)") for line in lines), (
            reported(obj), result.stdout)
    for kind, name in (("serviceaccount", "vnode"), ("deployment", "vnode"), ("rolebinding", "vnode-lease")):
        namespace = "kube-node-lease" if kind == "rolebinding" else NAMESPACE
        left = await kubectl.run("get", kind, name, "-n", namespace, check=False)
        assert left.returncode != 0 and "NotFound" in left.stderr, (kind, left.stderr)


async def test_apply_creates_every_object_as_built(kubectl: Kubectl, built: Build) -> None:
    """A real `kubectl apply -k DIR` creates everything; read back with `kubectl get -f`, each stored object holds
    every field the build gave it (the server adds only defaults)."""
    result = await kubectl.run("apply", "-k", str(built.directory))
    assert result.stdout.count(" created") + result.stdout.count(" configured") == len(built.objects), result.stdout
    stored = (await kubectl.run("get", "-f", "-", "-o", "json", stdin=built.dump())).json()
    items = stored["items"] if stored.get("kind") == "List" else [stored]
    assert [(o["kind"], o["metadata"]["name"]) for o in items] == [
        (o["kind"], o["metadata"]["name"]) for o in built.objects]
    for want, got in zip(built.objects, items, strict=True):
        assert missing(want, got) == [], described(want)


async def test_apply_again_changes_nothing(kubectl: Kubectl, built: Build) -> None:
    """Applying the same kustomization twice leaves every object `unchanged`: the server's defaults and the
    manifests agree, so kubectl's three-way patch is empty."""
    await kubectl.run("apply", "-k", str(built.directory))
    deployment = (await kubectl.run("get", "deployment", "vnode", "-n", NAMESPACE, "-o", "json")).json()
    again = await kubectl.run("apply", "-k", str(built.directory))
    assert again.stdout.count(" unchanged") == len(built.objects), again.stdout
    after = (await kubectl.run("get", "deployment", "vnode", "-n", NAMESPACE, "-o", "json")).json()
    assert after["metadata"]["resourceVersion"] == deployment["metadata"]["resourceVersion"]


def test_every_object_fits_the_api_schema(built: Build) -> None:
    """Field names and value shapes of every object, RBAC and Deployment included, match the Kubernetes API."""
    problems = {described(o): errors for o in built.objects if (errors := schema_errors(o))}
    assert problems == {}


def test_schema_check_catches_a_misplaced_field(built: Build) -> None:
    """The schema check is not vacuous: a field at the wrong level and a wrong type are both reported."""
    deployment = copy.deepcopy(built.one("Deployment", "vnode"))
    deployment["spec"]["replica"] = 1
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "10250"
    errors = schema_errors(deployment)
    assert any(e.startswith("Deployment.spec.replica:") for e in errors), errors
    assert any(e.startswith("Deployment.spec.template.spec.containers[0].ports[0].containerPort:") for e in errors)
