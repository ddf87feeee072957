"""NodeAgent: registers the virtual node, keeps its status current, and gates readiness on backend health.

It creates the Node or adopts an existing one (merging its labels and taint, never recreating it), patches status
on every change and at least every `status_update_seconds`, recreates the Node if someone deletes it, and runs the
Lease. `provider.ping()` runs every `ping_interval_seconds`: while it fails, Ready is written False once with the
backend's error and then neither status nor Lease is renewed, so the node lifecycle controller marks the node
unreachable and the scheduler stops sending pods. Pods are never touched here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vnode.clock import Clock
from vnode.config import NodeSettings
from vnode.errors import Conflict, NotFound, VnodeError
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kube.events import EventRecorder
from vnode.node import template
from vnode.node.lease import LeaseController
from vnode.providers.base import Provider
from vnode.util.health import BackendHealth
from vnode.util.tasks import TaskSupervisor, first_of

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class NodeAgent:
    def __init__(self, client: KubeClient, provider: Provider, settings: NodeSettings, *, internal_ip: str,
                 kubelet_port: int, clock: Clock, events: EventRecorder, health: BackendHealth,
                 declared_features: tuple[str, ...] = ()) -> None:
        self._client = client
        self._provider = provider
        self._settings = settings
        self._internal_ip = internal_ip
        # Set by the composition root once the kubelet API listens (a configured port 0 picks a free one).
        self.kubelet_port = kubelet_port
        self._declared_features = declared_features
        self._clock = clock
        self._events = events
        self._description = provider.describe()
        self._node: Obj | None = None
        self._conditions: dict[str, Obj] = {}
        self._health = template.STARTING
        self._health_gate = health
        self._serving = False
        self._status_due = asyncio.Event()
        self.ready = asyncio.Event()  # the Node exists
        self.status_written = asyncio.Event()  # set after every status write (tests wait on it)
        self.posted_ready = asyncio.Event()  # set once a status with Ready=True has been written
        self.lease = LeaseController(client, settings, clock, node_uid=self.node_uid, healthy=self.healthy)

    # Readiness inputs

    def node_uid(self) -> str | None:
        return self._node["metadata"]["uid"] if self._node else None

    def healthy(self) -> bool:
        return self._health_gate.ok

    def set_serving(self) -> None:
        """Called by the composition root once pods are reconciled and the kubelet API listens: Ready may go True."""
        self._serving = True
        self._update_health()

    def _update_health(self, backend_error: str | None = None) -> None:
        if not self._health_gate.ok:
            health = template.Health(False, "ProviderUnavailable",
                                     f"{self._description.provider} backend unavailable: {backend_error}")
        elif not self._serving:
            health = template.STARTING
        else:
            health = template.READY
        if health != self._health:
            self._health = health
            self._status_due.set()

    # Node object

    def _path(self, sub: str | None = None) -> str:
        return paths.node_path(self._settings.name, sub)

    def _status(self) -> Obj:
        return template.status(health=self._health, now=self._clock.now(), previous_conditions=self._conditions,
                               capacity=self._provider.capacity(), description=self._description,
                               settings=self._settings, internal_ip=self._internal_ip,
                               kubelet_port=self.kubelet_port, declared_features=self._declared_features)

    def _our_taint(self) -> Obj | None:
        return template.taint(self._settings, self._description)

    async def ensure_node(self) -> None:
        """Create the Node, or adopt an existing one: our labels and taint merged in, others' kept."""
        try:
            current = await self._client.get(self._path())
        except NotFound:
            body = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": self._settings.name,
                                 "labels": template.labels(self._settings, self._description)},
                    "spec": {"taints": template.merged_taints([], self._our_taint(), self._settings.taint_key)},
                    "status": self._status()}
            try:
                self._node = await self._client.create(paths.nodes_path(), body)
                log.info("registered node %s", self._settings.name)
                return
            except Conflict:
                current = await self._client.get(self._path())
        await self._adopt(current)

    async def _adopt(self, current: Obj) -> None:
        for _ in range(5):
            wanted = dict(current)
            meta = dict(current["metadata"])
            meta["labels"] = {**(meta.get("labels") or {}), **template.labels(self._settings, self._description)}
            wanted["metadata"] = meta
            taints = template.merged_taints((current.get("spec") or {}).get("taints") or [], self._our_taint(),
                                            self._settings.taint_key)
            wanted["spec"] = {**(current.get("spec") or {}), "taints": taints}
            if wanted == current:
                self._node = current
                return
            try:
                self._node = await self._client.replace(self._path(), wanted)
                log.info("adopted existing node %s", self._settings.name)
                return
            except Conflict:
                current = await self._client.get(self._path())
        raise Conflict(f"node {self._settings.name} kept changing while being adopted")

    async def write_status(self) -> None:
        """Patch status (conditions and addresses merge by type, so others' entries survive)."""
        body = {"status": self._status()}
        try:
            node = await self._client.patch(self._path("status"), body, patch_type="strategic")
        except NotFound:
            log.warning("node %s was deleted; registering it again", self._settings.name)
            self._events.record({"kind": "Node", "apiVersion": "v1", "metadata": {"name": self._settings.name}},
                                "Warning", "NodeRecreated", "the Node object was deleted while vnode ran")
            self._node = None
            await self.ensure_node()
            node = await self._client.patch(self._path("status"), body, patch_type="strategic")
        self._node = node
        self._conditions = {c["type"]: c for c in body["status"]["conditions"]}
        self.status_written.set()
        if self._health.ready:
            self.posted_ready.set()

    # Loops

    async def _status_loop(self) -> None:
        written_unhealthy = False
        while True:
            self._status_due.clear()
            # While the backend is down, write Ready=False once, then stay silent so the lease and heartbeat lapse.
            if self._health_gate.ok or not written_unhealthy:
                try:
                    await self.write_status()
                    written_unhealthy = not self._health_gate.ok
                except VnodeError as exc:
                    log.warning("node status update failed: %s", exc)
            if self._health_gate.ok:
                written_unhealthy = False
            await self._wait_status_due(self._settings.status_update_seconds)

    async def _wait_status_due(self, seconds: float) -> None:
        await first_of(self._status_due.wait(), self._clock.sleep(seconds))

    async def _ping_loop(self) -> None:
        while True:
            error: str | None = None
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that races the
                # ping's completion, and this loop would then outlive its owner.
                async with asyncio.timeout(self._settings.ping_timeout_seconds):
                    await self._provider.ping()
            except TimeoutError:
                error = f"health check took longer than {self._settings.ping_timeout_seconds:g} s"
            except VnodeError as exc:
                error = str(exc)
            ok = error is None
            if ok != self._health_gate.ok:
                self._health_gate.set(ok, error or "")
                node_ref = {"kind": "Node", "apiVersion": "v1", "metadata": {
                    "name": self._settings.name, "uid": self.node_uid() or ""}}
                if ok:
                    log.info("backend healthy again")
                    self._events.record(node_ref, "Normal", "NodeReady", "backend reachable again")
                else:
                    log.warning("backend unhealthy: %s", error)
                    self._events.record(node_ref, "Warning", "ProviderUnavailable", error or "")
            self._update_health(error)
            await self._clock.sleep(self._settings.ping_interval_seconds)

    async def run(self) -> None:
        """Register, then keep status, Lease and health current until cancelled."""
        tasks = TaskSupervisor(f"node {self._settings.name}")
        try:
            while self._node is None:
                try:
                    await self.ensure_node()
                except VnodeError as exc:
                    log.warning("registering node %s failed: %s; retrying", self._settings.name, exc)
                    await self._clock.sleep(1.0)
            self.ready.set()
            tasks.spawn(self._ping_loop(), name="health checks")
            tasks.spawn(self._status_loop(), name="status updates")
            tasks.spawn(self.lease.run(), name="lease renewals")
            await tasks.failed.wait()
            raise RuntimeError("a node agent loop stopped") from tasks.failure
        finally:
            await tasks.stop()
