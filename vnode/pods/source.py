"""Where pod resolution reads ConfigMaps and Secrets and gets service account tokens: the API, on demand.

Reads are scoped to what a pod references (no cluster-wide Secret or ConfigMap watches, which cost memory and RBAC
beyond a node's). Service account tokens come from TokenRequest and are reused until 80% of their lifetime, as the
kubelet's token manager does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from vnode.clock import Clock, parse_rfc3339
from vnode.errors import NotFound
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.providers.base import PodRef

Obj = dict[str, Any]


class ApiObjectSource:
    def __init__(self, client: KubeClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._tokens: dict[tuple[str, str, str | None, str], tuple[str, datetime]] = {}

    async def _get(self, path: str) -> Obj | None:
        try:
            return await self._client.get(path)
        except NotFound:
            return None

    async def get_configmap(self, namespace: str, name: str) -> Obj | None:
        return await self._get(paths.configmap_path(namespace, name))

    async def get_secret(self, namespace: str, name: str) -> Obj | None:
        return await self._get(paths.secret_path(namespace, name))

    async def service_account_token(self, namespace: str, service_account: str, *, audience: str | None,
                                    expiration_seconds: int, pod: PodRef) -> str:
        key = (namespace, service_account, audience, pod.uid)
        cached = self._tokens.get(key)
        if cached and self._clock.now() < cached[1]:
            return cached[0]
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [audience] if audience else [],
            "expirationSeconds": expiration_seconds,
            # Bound to the pod: the token stops working when the pod is deleted.
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod.name, "uid": pod.uid}}}
        answer = await self._client.create(
            paths.resource_path("v1", "serviceaccounts", namespace=namespace, name=service_account, sub="token"),
            request)
        token: str = answer["status"]["token"]
        expires = parse_rfc3339(answer["status"]["expirationTimestamp"])
        lifetime = expires - self._clock.now()
        self._tokens[key] = (token, self._clock.now() + timedelta(seconds=lifetime.total_seconds() * 0.8))
        return token

    def forget_pod(self, uid: str) -> None:
        for key in [k for k in self._tokens if k[3] == uid]:
            del self._tokens[key]
