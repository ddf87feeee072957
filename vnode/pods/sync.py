"""The work behind the PodController's queues: one pod's spec to the provider, one pod's status to the API.

`sync_spec` decides from the pod as the informer last saw it: create (resolving env and volumes first), update when
the spec changed, delete gracefully when a deletionTimestamp appears (then the final grace-0 delete with a UID
precondition once containers stopped or the grace period ended), fail the pod past `activeDeadlineSeconds`, and
leave DaemonSet pods alone with a clear reason. `write_status` turns the provider's latest update into one
`pods/status` write, never moving a terminal pod back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from vnode.clock import Clock, parse_rfc3339
from vnode.errors import Conflict, InvalidPod, NotFound, NotSupported, Retryable
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kube.events import EventRecorder
from vnode.kube.informer import Informer
from vnode.pods import status as pod_status
from vnode.pods.resolve import MissingReference, resolve_pod
from vnode.pods.source import ApiObjectSource
from vnode.providers.base import (
    ContainerState,
    ContainerStatus,
    PodPhase,
    PodRef,
    PodStatusUpdate,
    Provider,
    ProviderEvent,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]
# Spec fields whose change the provider must hear about; everything else (labels, annotations, status) is free.
_SPEC_FIELDS = ("containers", "initContainers", "ephemeralContainers", "activeDeadlineSeconds")


def _spec_fingerprint(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return hashlib.sha1(json.dumps({k: spec.get(k) for k in _SPEC_FIELDS}, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class WrittenStatus:
    """What vnode last wrote for a pod: its phase, and a digest to recognise our own write coming back."""

    phase: str
    digest: str


def status_digest(status: Obj | None) -> str:
    return hashlib.sha1(json.dumps(status or {}, sort_keys=True).encode()).hexdigest()


def _written(status: Obj) -> WrittenStatus:
    return WrittenStatus(str(status.get("phase", "")), status_digest(status))


def _is_daemonset_pod(pod: Obj) -> bool:
    return any(ref.get("kind") == "DaemonSet" for ref in pod["metadata"].get("ownerReferences") or [])


class PodSync:
    def __init__(self, client: KubeClient, provider: Provider, *, informer: Informer, source: ApiObjectSource,
                 node_name: str, host_ip: str, clock: Clock, events: EventRecorder) -> None:
        self._client = client
        self._provider = provider
        self._informer = informer
        self._source = source
        self._node_name = node_name
        self._host_ip = host_ip
        self._clock = clock
        self._events = events
        self.latest: dict[str, PodStatusUpdate] = {}  # by pod key: what the provider last said
        # Events of updates not yet written, by pod key: a newer update replaces `latest` but not its events.
        self.pending_events: dict[str, list[ProviderEvent]] = {}
        self.last_written: dict[str, WrittenStatus] = {}  # by pod UID
        self.created: dict[str, str] = {}  # pod key → UID handed to the provider
        self._synced_spec: dict[str, str] = {}  # pod UID → spec fingerprint the provider has
        self._delete_sent: set[str] = set()  # pod UIDs whose provider delete was issued
        self._noted: set[tuple[str, str]] = set()  # (uid, reason) of one-off events already recorded
        self.requeue: Callable[[str, float], None] = lambda key, delay: None

    @staticmethod
    def spec_changed(pod: Obj, old: Obj) -> bool:
        meta, old_meta = pod["metadata"], old["metadata"]
        return (_spec_fingerprint(pod) != _spec_fingerprint(old)
                or meta.get("deletionTimestamp") != old_meta.get("deletionTimestamp")
                or meta.get("uid") != old_meta.get("uid"))

    # Start-up reconciliation

    def adopt(self, pod: Obj, update: PodStatusUpdate) -> None:
        """The backend already runs this pod (same UID): take it over without recreating it."""
        ref = PodRef.of(pod)
        self.created[ref.key] = ref.uid
        self._synced_spec[ref.uid] = _spec_fingerprint(pod)
        self.latest[ref.key] = update

    async def handle_lost(self, pod: Obj) -> None:
        """The backend lost a pod after it ran (e.g. while vnode was down): never recreate it silently."""
        if (pod.get("spec") or {}).get("restartPolicy") == "Never":
            message = "the backend lost the pod after it had started; restartPolicy Never forbids running it again"
            self._events.record(pod, "Warning", "ProviderLost", message)
            await self._fail(pod, "ProviderLost", message)
        else:
            self._events.record(pod, "Warning", "Recreated",
                                "the backend lost the pod after it had started; starting it again")

    # Spec → provider

    async def sync_spec(self, key: str) -> None:
        pod = self._informer.get(key)
        known_uid = self.created.get(key)
        if pod is None or (known_uid and pod["metadata"]["uid"] != known_uid):
            if known_uid:  # gone from the API (or replaced by a namesake): stop what we started
                namespace, name = key.split("/", 1)
                await self._provider.delete_pod(PodRef(namespace, name, known_uid), 0)
                self._forget(key, known_uid)
            if pod is None:
                return
        ref = PodRef.of(pod)
        phase = (pod.get("status") or {}).get("phase")
        if phase not in pod_status.TERMINAL_PHASES:
            # Our own terminal write may not have reached the informer yet.
            written = self.last_written.get(ref.uid)
            phase = written.phase if written else phase
        if pod["metadata"].get("deletionTimestamp"):
            await self._delete(key, ref, pod)
        elif phase in pod_status.TERMINAL_PHASES:
            return
        elif _is_daemonset_pod(pod):
            await self._decline_daemonset(pod, ref)
        elif self.created.get(key) != ref.uid:
            await self._create(key, ref, pod)
        elif self._synced_spec.get(ref.uid) != _spec_fingerprint(pod):
            await self._update(ref, pod)
        if not pod["metadata"].get("deletionTimestamp") and phase not in pod_status.TERMINAL_PHASES:
            await self._enforce_deadline(key, ref, pod)

    def _forget(self, key: str, uid: str) -> None:
        self.created.pop(key, None)
        self._synced_spec.pop(uid, None)
        self._delete_sent.discard(uid)
        self.latest.pop(key, None)
        self.pending_events.pop(key, None)
        self.last_written.pop(uid, None)
        self._source.forget_pod(uid)  # its cached service account tokens are bound to it

    async def _create(self, key: str, ref: PodRef, pod: Obj) -> None:
        try:
            resolution = await resolve_pod(pod, self._source, node_name=self._node_name, host_ip=self._host_ip)
            for event in resolution.events:
                self._events.record(pod, event.type, event.reason, event.message)
            await self._provider.create_pod(resolution.pod)
        except MissingReference as exc:
            for event in exc.events:
                self._events.record(pod, event.type, event.reason, event.message)
            await self._write_waiting(pod, "CreateContainerConfigError", str(exc))
            raise
        except (InvalidPod, NotSupported) as exc:
            field = getattr(exc, "field", None)
            message = f"{field}: {exc}" if field else str(exc)
            self._events.record(pod, "Warning", "ProviderCreateFailed", message)
            await self._fail(pod, "UnsupportedPodSpec", message)
            return
        except Retryable as exc:
            self._events.record(pod, "Warning", "ProviderCreateFailed", f"will retry: {exc}")
            await self._write_waiting(pod, "ProviderUnavailable", f"waiting for the backend: {exc}")
            raise
        self.created[key] = ref.uid
        self._synced_spec[ref.uid] = _spec_fingerprint(pod)
        self._events.record(pod, "Normal", "ProviderCreated", f"pod handed to the {self._provider.describe().provider}"
                            " backend")

    async def _update(self, ref: PodRef, pod: Obj) -> None:
        try:
            resolution = await resolve_pod(pod, self._source, node_name=self._node_name, host_ip=self._host_ip)
            await self._provider.update_pod(resolution.pod)
        except NotSupported as exc:
            self._events.record(pod, "Warning", "ProviderUpdateFailed", str(exc))
        self._synced_spec[ref.uid] = _spec_fingerprint(pod)

    async def _decline_daemonset(self, pod: Obj, ref: PodRef) -> None:
        """DaemonSet pods (kube-proxy, CNI agents) have no host to run on here; failing them would make the
        DaemonSet controller recreate them in a loop, so they stay Pending with a reason, told once."""
        reason, message = "DaemonSetPodNotRun", "vnode does not run DaemonSet pods: a virtual node has no host"
        if (ref.uid, reason) not in self._noted:
            self._noted.add((ref.uid, reason))
            self._events.record(pod, "Warning", reason, message)
        await self._write_waiting(pod, reason, message)

    # Deletion

    async def _delete(self, key: str, ref: PodRef, pod: Obj) -> None:
        meta = pod["metadata"]
        grace = int(meta.get("deletionGracePeriodSeconds") or 0)
        if self.created.get(key) == ref.uid and ref.uid not in self._delete_sent:
            self._events.record(pod, "Normal", "Killing", "Stopping the pod's containers")
            await self._provider.delete_pod(ref, grace)
            self._delete_sent.add(ref.uid)
        deadline = parse_rfc3339(meta["deletionTimestamp"])
        stopped = self._containers_stopped(key, ref)
        if stopped or self._clock.now() >= deadline:
            await self._final_delete(key, ref)
        else:
            self.requeue(key, (deadline - self._clock.now()).total_seconds())

    def _containers_stopped(self, key: str, ref: PodRef) -> bool:
        if self.created.get(key) != ref.uid:
            return True  # never reached the backend
        update = self.latest.get(key)
        return update is not None and update.ref.uid == ref.uid and all(
            c.state.kind == "terminated" for c in (*update.containers, *update.init_containers))

    async def _final_delete(self, key: str, ref: PodRef) -> None:
        """The kubelet's last word on a pod: a grace-0 delete bound to this UID, so a namesake is never hit."""
        with contextlib.suppress(NotFound, Conflict):
            await self._client.delete(paths.pod_path(ref.namespace, ref.name), grace_period_seconds=0,
                                      preconditions={"uid": ref.uid})
        self._forget(key, ref.uid)

    # Deadlines and failures

    async def _enforce_deadline(self, key: str, ref: PodRef, pod: Obj) -> None:
        """activeDeadlineSeconds, counted from startTime as the kubelet does: past it the pod is stopped and
        Failed with reason DeadlineExceeded."""
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        start = (pod.get("status") or {}).get("startTime")
        if deadline is None or not start:
            return
        left = (parse_rfc3339(start) + timedelta(seconds=int(deadline)) - self._clock.now()).total_seconds()
        if left > 0:
            self.requeue(key, left)
            return
        message = "Pod was active on the node longer than the specified deadline"
        self._events.record(pod, "Normal", "DeadlineExceeded", message)
        # Failed is decided first, so the stopped containers' own status cannot show up as Succeeded in between.
        await self._fail(pod, "DeadlineExceeded", message)
        if self.created.get(key) == ref.uid and ref.uid not in self._delete_sent:
            grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds") or 0)
            await self._provider.delete_pod(ref, grace)
            self._delete_sent.add(ref.uid)

    async def _fail(self, pod: Obj, reason: str, message: str) -> None:
        await self._write_reason(pod, "Failed", reason, message)

    async def _write_waiting(self, pod: Obj, reason: str, message: str) -> None:
        """Pending, with every container waiting for `reason`: the pod never sits Pending without saying why."""
        await self._write_reason(pod, "Pending", reason, message)

    async def _write_reason(self, pod: Obj, phase: PodPhase, reason: str, message: str) -> None:
        update = PodStatusUpdate(ref=PodRef.of(pod), phase=phase, reason=reason, message=message, containers=tuple(
            ContainerStatus(c["name"], ContainerState("waiting", reason=reason, message=message),
                            image=c.get("image", "")) for c in pod["spec"].get("containers", [])))
        await self._write(pod, pod_status.pod_status(update, pod, host_ip=self._host_ip, now=self._clock.now()))

    # Provider → status

    async def write_status(self, key: str) -> None:
        pod = self._informer.get(key)
        update = self.latest.get(key)
        if pod is None or update is None or update.ref.uid != pod["metadata"]["uid"]:
            return
        for event in self.pending_events.pop(key, ()):
            self._events.record(pod, event.type, event.reason, event.message)
        current = pod.get("status") or {}
        written = self.last_written.get(pod["metadata"]["uid"])
        if current.get("phase") in pod_status.TERMINAL_PHASES or (
                written is not None and written.phase in pod_status.TERMINAL_PHASES):
            # A terminal pod never moves back, even before the informer has seen our terminal write. What the
            # provider says last (the final vnode.io/cost) may still follow a status decided here (a deadline).
            if update.annotations:
                await self._annotate(pod, dict(update.annotations))
            return
        wanted = pod_status.pod_status(update, pod, host_ip=self._host_ip, now=self._clock.now())
        if update.annotations:
            await self._annotate(pod, dict(update.annotations))
        await self._write(pod, wanted)

    async def _annotate(self, pod: Obj, annotations: dict[str, str]) -> None:
        current = pod["metadata"].get("annotations") or {}
        if all(current.get(k) == v for k, v in annotations.items()):
            return
        meta = pod["metadata"]
        try:
            # The UID precondition keeps a late patch off a namesake pod; a pod already gone needs no annotation.
            await self._client.patch(paths.pod_path(meta["namespace"], meta["name"]),
                                     {"metadata": {"uid": meta["uid"], "annotations": annotations}},
                                     patch_type="merge")
        except (NotFound, Conflict):
            return

    async def _write(self, pod: Obj, wanted: Obj) -> None:
        meta = pod["metadata"]
        earlier = self.last_written.get(meta["uid"])
        if earlier is not None and earlier.phase in pod_status.TERMINAL_PHASES:
            return  # a terminal status, once decided here, is final (the two queues may race for a pod)
        if pod_status.same_status(pod.get("status") or {}, wanted):
            self.last_written[meta["uid"]] = _written(pod.get("status") or {})
            return
        # Recorded before the write goes out, so a concurrent writer for this pod sees a terminal decision.
        self.last_written[meta["uid"]] = _written(wanted)
        try:
            written = await self._client.patch(
                paths.pod_path(meta["namespace"], meta["name"], "status"),
                # The UID precondition keeps a late write from landing on a namesake pod.
                {"metadata": {"uid": meta["uid"]}, "status": wanted}, patch_type="strategic")
        except (NotFound, Conflict):
            return
        self.last_written[meta["uid"]] = _written(written.get("status") or wanted)
