"""The node's Lease in `kube-node-lease`: the heartbeat the node lifecycle controller watches.

Renewed every `lease_renew_seconds` while the node is healthy, with an ownerReference to the Node so it goes
when the Node goes. A failed renewal backs off (200 ms doubling to 7 s, as the kubelet does) and re-reads the
Lease on conflict; a missing Lease is created.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from vnode.clock import Clock, rfc3339_micro
from vnode.config import NodeSettings
from vnode.errors import Conflict, NotFound, VnodeError
from vnode.kube import paths
from vnode.kube.client import KubeClient

log = logging.getLogger(__name__)
NAMESPACE = "kube-node-lease"
Obj = dict[str, Any]


class LeaseController:
    def __init__(self, client: KubeClient, settings: NodeSettings, clock: Clock, *,
                 node_uid: Callable[[], str | None], healthy: Callable[[], bool]) -> None:
        self._client = client
        self._settings = settings
        self._clock = clock
        self._node_uid = node_uid
        self._healthy = healthy
        self._lease: Obj | None = None
        self.renewed = asyncio.Event()  # set after each successful renewal (tests wait on it)

    def _path(self) -> str:
        return paths.lease_path(NAMESPACE, self._settings.name)

    def _desired(self, base: Obj | None) -> Obj:
        lease: Obj = dict(base) if base else {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                               "metadata": {"name": self._settings.name, "namespace": NAMESPACE}}
        meta = dict(lease["metadata"])
        uid = self._node_uid()
        if uid:
            meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": self._settings.name, "uid": uid}]
        lease["metadata"] = meta
        lease["spec"] = {**(lease.get("spec") or {}), "holderIdentity": self._settings.name,
                         "leaseDurationSeconds": self._settings.lease_duration_seconds,
                         "renewTime": rfc3339_micro(self._clock.now())}
        return lease

    async def renew(self) -> None:
        """One renewal: PUT over the last Lease written; on conflict or absence, re-read or create."""
        if self._lease is not None:
            try:
                self._lease = await self._client.replace(self._path(), self._desired(self._lease))
                return
            except (Conflict, NotFound):
                self._lease = None
        try:
            current = await self._client.get(self._path())
        except NotFound:
            self._lease = await self._client.create(paths.leases_path(NAMESPACE), self._desired(None))
            return
        self._lease = await self._client.replace(self._path(), self._desired(current))

    async def run(self) -> None:
        """Renew while healthy until cancelled."""
        backoff = 0.2
        while True:
            if self._healthy() and self._node_uid():
                try:
                    await self.renew()
                    backoff = 0.2
                    self.renewed.set()
                except VnodeError as exc:
                    log.warning("lease renewal failed: %s; retrying in %.1f s", exc, backoff)
                    await self._clock.sleep(backoff)
                    backoff = min(backoff * 2, 7.0)
                    continue
            await self._clock.sleep(self._settings.lease_renew_seconds)
