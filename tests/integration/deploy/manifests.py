"""deploy/ and examples/ as the deploy tests read them: kustomizations built by real `kubectl kustomize`.

Owns where the files are, how a kustomization is built (the ECI overlay in a copy of deploy/ with a credentials.env
made from its example, as a user would), and look-ups over the built objects. No API server here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
EXAMPLES = ROOT / "examples"
KUSTOMIZATIONS = ("base", "overlays/eci")
CONFIG_MAP = "vnode-config"  # configMapGenerator name; kustomize appends a content hash
NAMESPACE = "vnode-system"
SERVICE_ACCOUNT = "vnode"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Build:
    """One kustomization, built."""

    name: str  # "base" or "overlays/eci"
    directory: Path  # the kustomization built (in a copy of deploy/)
    objects: tuple[Obj, ...]

    def find(self, kind: str, name: str | None = None) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = self.find(kind, name)
        assert len(found) == 1, f"{self.name}: want one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def config_map(self) -> Obj:
        maps = [o for o in self.find("ConfigMap") if o["metadata"]["name"].startswith(CONFIG_MAP + "-")]
        assert len(maps) == 1, f"{self.name}: want one generated {CONFIG_MAP} ConfigMap, found {len(maps)}"
        return maps[0]

    def container(self) -> Obj:
        containers = self.one("Deployment", "vnode")["spec"]["template"]["spec"]["containers"]
        return next(c for c in containers if c["name"] == "vnode")

    def env(self, name: str) -> Obj:
        return next(e for e in self.container().get("env", []) if e["name"] == name)

    @property
    def node_name(self) -> str:
        return str(self.env("VNODE_NODE__NAME")["value"])

    def dump(self, objects: list[Obj] | tuple[Obj, ...] | None = None) -> bytes:
        return yaml.safe_dump_all(list(self.objects if objects is None else objects)).encode()


def copy_deploy(target: Path) -> Path:
    """deploy/ copied to `target`, with the ECI overlay's credentials.env made from credentials.env.example."""
    copy = target / "deploy"
    shutil.copytree(DEPLOY, copy)
    eci = copy / "overlays" / "eci"
    shutil.copy(eci / "credentials.env.example", eci / "credentials.env")
    return copy


def build(kubectl: str, directory: Path) -> tuple[Obj, ...]:
    """`kubectl kustomize DIR`: the objects `kubectl apply -k DIR` would send."""
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"kubectl kustomize {directory} failed: {done.stderr}"
    return tuple(o for o in yaml.safe_load_all(done.stdout) if o)


def served_kinds(api_resources: str) -> set[tuple[str, str]]:
    """(apiVersion, kind) pairs from `kubectl api-resources --no-headers` (SHORTNAMES may be blank: read from the
    right)."""
    served = set()
    for line in api_resources.splitlines():
        fields = line.split()
        if len(fields) >= 4:
            served.add((fields[-3], fields[-1]))
    return served


def load_example(relative: str) -> Obj:
    loaded = yaml.safe_load((EXAMPLES / relative).read_text())
    assert isinstance(loaded, dict)
    return loaded
