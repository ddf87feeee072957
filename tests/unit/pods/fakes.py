"""An in-memory ObjectSource (the seam to the API server) and small builders for pods and objects."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vnode.providers.base import PodRef

NAMESPACE = "ns"


@dataclass(frozen=True)
class TokenRequest:
    namespace: str
    service_account: str
    audience: str | None
    expiration_seconds: int
    pod: PodRef


@dataclass
class FakeSource:
    """ConfigMaps and Secrets by (namespace, name); every token request is recorded."""

    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    reads: list[tuple[str, str, str]] = field(default_factory=list)

    def add_configmap(self, name: str, data: Mapping[str, str] | None = None,
                      binary: Mapping[str, bytes] | None = None, namespace: str = NAMESPACE) -> FakeSource:
        obj: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace}}
        if data is not None:
            obj["data"] = dict(data)
        if binary is not None:
            obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
        self.objects["configmap", namespace, name] = obj
        return self

    def add_secret(self, name: str, data: Mapping[str, bytes | str], namespace: str = NAMESPACE) -> FakeSource:
        encoded = {k: base64.b64encode(v if isinstance(v, bytes) else v.encode()).decode() for k, v in data.items()}
        self.objects["secret", namespace, name] = {"metadata": {"name": name, "namespace": namespace},
                                                   "type": "Opaque", "data": encoded}
        return self

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(("configmap", namespace, name))
        return self.objects.get(("configmap", namespace, name))

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(("secret", namespace, name))
        return self.objects.get(("secret", namespace, name))

    async def service_account_token(self, namespace: str, service_account: str, *, audience: str | None,
                                    expiration_seconds: int, pod: PodRef) -> str:
        self.token_requests.append(TokenRequest(namespace, service_account, audience, expiration_seconds, pod))
        return f"token-{service_account}-{len(self.token_requests)}"


def make_pod(*containers: dict[str, Any], volumes: list[dict[str, Any]] | None = None,
             **spec: Any) -> dict[str, Any]:
    """A stored, bound pod in NAMESPACE with the given containers (a bare `c` container when none given)."""
    body: dict[str, Any] = {"nodeName": "vnode-1", "serviceAccountName": "builder",
                            "containers": list(containers) or [{"name": "c", "image": "busybox"}], **spec}
    if volumes is not None:
        body["volumes"] = volumes
    return {"metadata": {"name": "p", "namespace": NAMESPACE, "uid": "uid-1",
                         "labels": {"app": "web", "tier": "front"}, "annotations": {"note": 'say "hi"\n'}},
            "spec": body, "status": {"phase": "Pending"}}


def container(name: str = "c", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **fields}
