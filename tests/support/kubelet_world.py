"""A sandbox plus a running virtual node, and the helpers kubelet API tests share: pods, kubectl, TLS contexts."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.agent import VnodeAgent
from vnode.kube import paths
from vnode.providers.mock import MockProvider
from vnode.sandbox.auth import StaticTokens

WAIT = 20.0  # bound on every wait for something a test expects; never a sleep


@dataclass
class KubeletWorld:
    sandbox: RunningSandbox
    agent: VnodeAgent
    tmp: Path

    @property
    def node(self) -> str:
        return self.agent.settings.node.name

    @property
    def mock(self) -> MockProvider:
        assert isinstance(self.agent.provider, MockProvider)
        return self.agent.provider

    @property
    def kubelet_url(self) -> str:
        return f"https://127.0.0.1:{self.agent.kubelet.port}"

    def kubectl(self, version: str | None = None) -> Kubectl:
        return Kubectl(kubectl_binary(version), self.sandbox.kubeconfig)

    def apiserver_client_ssl(self) -> ssl.SSLContext:
        """What kube-apiserver presents to kubelets: the sandbox's kubelet-client certificate."""
        return self.sandbox.server.pki.kubelet_client_ssl_context()

    def admin_ssl(self) -> ssl.SSLContext:
        return self.sandbox.server.pki.client_ssl_context()

    def token(self, user: str) -> str:
        """A bearer token of a user in the sandbox's tokens.csv (sandbox-admin, viewer, system:node:vnode)."""
        return StaticTokens.load(self.sandbox.state_dir / "tokens.csv").token_for(user)

    async def create_pod(self, name: str, *, containers: list[dict[str, Any]] | None = None,
                         restart_policy: str = "Always", wait_running: bool = True) -> dict[str, Any]:
        manifest = {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": self.node, "restartPolicy": restart_policy,
                     "tolerations": [{"operator": "Exists"}],
                     "containers": containers or [{"name": "main", "image": "busybox"}]},
        }
        await self.kubectl().run("create", "-f", "-", stdin=yaml.safe_dump(manifest).encode())
        if not wait_running:
            return manifest
        return await self.wait_pod(name, lambda pod: pod.get("status", {}).get("phase") == "Running", "Running")

    async def wait_pod(self, name: str, predicate: Any, what: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            pod = await self.agent.client.get(paths.pod_path("default", name))
            return pod if predicate(pod) else None
        return await eventually(probe, timeout_seconds=WAIT, what=f"pod {name} {what}")

    async def raw(self, path: str, version: str | None = None) -> str:
        result = await self.kubectl(version).run("get", "--raw", f"/api/v1/nodes/{self.node}/proxy{path}")
        return result.stdout

    async def raw_json(self, path: str) -> Any:
        return json.loads(await self.raw(path))
