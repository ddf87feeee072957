"""PodController: drives every pod bound to this node through the provider, and writes their status back.

Two keyed queues, named by direction: `from_kubernetes` syncs spec changes to the provider (create, update, delete,
deadlines), `from_provider` writes the provider's status to `pods/status`. This class alone writes pod status. A
retryable failure is retried with backoff while the pod carries an Event and a status reason; a permanent one fails
the pod with a reason naming the field. Metadata-only changes cost no provider call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vnode.clock import Clock
from vnode.config import PodSettings
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kube.events import EventRecorder
from vnode.kube.informer import Informer
from vnode.pods import status as pod_status
from vnode.pods.queue import KeyedQueue
from vnode.pods.reconcile import reconcile
from vnode.pods.source import ApiObjectSource
from vnode.pods.sync import PodSync, status_digest
from vnode.providers.base import PodStatusUpdate, Provider
from vnode.util.health import BackendHealth
from vnode.util.tasks import TaskSupervisor, wait_ready

log = logging.getLogger(__name__)
Obj = dict[str, Any]


class PodController:
    def __init__(self, client: KubeClient, provider: Provider, settings: PodSettings, *, node_name: str,
                 host_ip: str, clock: Clock, events: EventRecorder, health: BackendHealth) -> None:
        self._provider = provider
        self._clock = clock
        self._health = health
        health.subscribe(self._on_health)
        self.informer = Informer(client, paths.pods_path(), field_selector=f"spec.nodeName={node_name}",
                                 on_event=self._on_pod_event, clock=clock)
        self.sync = PodSync(client, provider, informer=self.informer, source=ApiObjectSource(client, clock),
                            node_name=node_name, host_ip=host_ip, clock=clock, events=events)
        queue_args = {"workers": settings.workers, "clock": clock, "base_delay_seconds": settings.retry_base_seconds,
                      "max_delay_seconds": settings.retry_max_seconds}
        self.from_kubernetes = KeyedQueue("pods from kubernetes", self._sync_spec, **queue_args)  # type: ignore[arg-type]
        self.from_provider = KeyedQueue("pod status from provider", self._write_status,
                                        **queue_args)  # type: ignore[arg-type]
        self.sync.requeue = self.from_kubernetes.add_after
        self.ready = asyncio.Event()  # informer synced and start-up reconciliation done

    # Inputs

    def notify(self, update: PodStatusUpdate) -> None:
        """The provider's status callback: keep the latest per pod (and every event not yet recorded) and wake the
        status queue. Never blocks."""
        if update.events:
            self.sync.pending_events.setdefault(update.ref.key, []).extend(update.events)
        self.sync.latest[update.ref.key] = update
        self.from_provider.add(update.ref.key)
        if update.phase in pod_status.TERMINAL_PHASES or all(
                c.state.kind == "terminated" for c in update.containers):
            # A terminating pod whose containers stopped can now be finally deleted.
            self.from_kubernetes.add(update.ref.key)

    def _on_pod_event(self, kind: str, pod: Obj, old: Obj | None) -> None:
        key = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        started = (pod.get("status") or {}).get("startTime") != ((old or {}).get("status") or {}).get("startTime")
        if kind == "DELETED" or old is None or self.sync.spec_changed(pod, old):
            self.from_kubernetes.add(key)
        elif started and (pod.get("spec") or {}).get("activeDeadlineSeconds") is not None:
            self.from_kubernetes.add(key)  # the deadline clock starts now
        elif self._status_overwritten(pod, old):
            # Someone else changed status (e.g. the node lifecycle controller marked the pod not Ready): restore it.
            self.from_provider.add(key)

    def _status_overwritten(self, pod: Obj, old: Obj) -> bool:
        if pod.get("status") == old.get("status"):
            return False
        written = self.sync.last_written.get(pod["metadata"].get("uid", ""))
        return written is None or status_digest(pod.get("status")) != written.digest

    async def _sync_spec(self, key: str) -> None:
        await self.sync.sync_spec(key)

    async def _write_status(self, key: str) -> None:
        # While the backend cannot be reached vnode does not know how its pods are: it claims nothing, and
        # lets the cluster's view (e.g. not Ready from the node lifecycle controller) stand until it recovers.
        if self._health.ok:
            await self.sync.write_status(key)

    def _on_health(self, ok: bool) -> None:
        if ok:
            for pod in self.informer.list():
                self.from_provider.add(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")

    # Lifecycle

    async def run(self) -> None:
        """Watch pods, reconcile with the backend, then sync until cancelled."""
        tasks = TaskSupervisor("pod controller")
        try:
            tasks.spawn(self.informer.run(), name="pod informer")
            await wait_ready(self.informer.ready, tasks, "the pod informer to sync")
            await reconcile(self.sync, self._provider, self.informer, clock=self._clock)
            tasks.spawn(self.from_kubernetes.run(), name="from kubernetes")
            tasks.spawn(self.from_provider.run(), name="from provider")
            for pod in self.informer.list():
                self.from_kubernetes.add(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            for key in list(self.sync.latest):
                self.from_provider.add(key)  # adopted pods: bring their status up to date
            self.ready.set()
            await tasks.failed.wait()
            raise RuntimeError("a pod controller task stopped") from tasks.failure
        finally:
            await tasks.stop()
