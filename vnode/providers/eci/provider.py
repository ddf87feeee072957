"""`EciProvider`: a virtual node's pods as Alibaba Cloud ECI container groups, one pay-per-use group per pod.

Owns the `EciClient` it builds (closed when `run` ends), the `GroupCache` of this node's groups, creation across
the plan's shapes, deletion, adoption (`list_pods`), the orphan sweep, and the tasks `run` starts, cancels and
awaits: the `StatusPoller`'s status and event polls and instance facts lookups, and the sweep. Groups are found
again by their tags (cluster, node, pod UID), so a restarted vnode adopts what runs. Logs, exec and usage are
delegated to `EciLogReader`, `EciExecBridge` and `usage_snapshot`. Must not write pod status: it only reports
through `notify`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from vnode.clock import Clock
from vnode.config import EciProviderSettings
from vnode.errors import Conflict, InvalidPod, NotFound, NotSupported, Retryable, Throttled, VnodeError
from vnode.providers.base import (
    ContainerState,
    ContainerStatus,
    NodeDescription,
    NodeResources,
    PodRef,
    PodStatusUpdate,
    ProviderEvent,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.eci import status
from vnode.providers.eci.client import EciClient, error_code
from vnode.providers.eci.credentials import credential_source
from vnode.providers.eci.exec_bridge import EciExecBridge
from vnode.providers.eci.logs import EciLogReader
from vnode.providers.eci.poller import GROUPS_PAGE, GroupCache, GroupRecord, StatusPoller, chunks
from vnode.providers.eci.quota import Quota, RetryPolicy
from vnode.providers.eci.status import ci, ci_list, text
from vnode.providers.eci.translate import TAG_UID, CreatePlan, GroupShape, node_tags, plan_create, ref_from_tags
from vnode.providers.eci.usage import usage_snapshot
from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot
from vnode.util.tasks import TaskSupervisor

log = logging.getLogger(__name__)
# CreateContainerGroup refusals that mean "not this shape, here, now" (eci-wire.md §4): the next shape, or
# pay-as-you-go after spot, may be accepted. Anything else is about the pod or the account and is raised.
NEXT_SHAPE_CODES = frozenset({
    "OperationDenied.NoStock", "Spot.NotMatched", "RecommendEmpty.InstanceTypeFamilyNotMatched", "Zone.NotOnSale",
    "InvalidVSwitchId.IpNotEnough", "InvalidParameter.CPU.Memory", "InvalidSpotCpuMemorySpec"})
SHAPE_REASON = "ShapeUnavailable"
# How long one create waits out ECI's throttling before the controller hears of it, and the longest single wait.
THROTTLE_PATIENCE_SECONDS, _THROTTLE_WAIT_MAX_SECONDS = 120.0, 10.0
# Quotas that do not refill within that patience (a daily vCPU cap, the account's resources): told at once.
_QUOTA_CODES = frozenset({"Throttling.Vcpu.PerDay", "QuotaExceeded"})
Attempt = tuple[GroupShape, bool]  # a shape, and whether as a spot instance


def client_token(*parts: str) -> str:
    """ECI's ClientToken (at most 64 ASCII characters): the same parts always give the same token."""
    token = "-".join(parts)
    if len(token) <= 64 and token.isascii():
        return token
    return hashlib.sha256(token.encode()).hexdigest()  # 64 hex characters


def attempts(plan: CreatePlan) -> list[Attempt]:
    """Every shape as spot first when the pod asks for spot; then, if it allows the fallback, every shape again
    pay-as-you-go (ACK's eci-spot-fallback). The order is fixed: attempt n always has the same ClientToken."""
    if plan.spot is None:
        return [(shape, False) for shape in plan.shapes]
    spot = [(shape, True) for shape in plan.shapes]
    return spot + ([(shape, False) for shape in plan.shapes] if plan.spot.fallback else [])


def build_client(settings: EciProviderSettings, clock: Clock) -> EciClient:
    return EciClient(
        region_id=settings.region_id, credentials=credential_source(settings.credentials_dir),
        endpoint=settings.endpoint, retry=RetryPolicy(max_attempts=settings.max_attempts),
        quotas={action: Quota(per_second=q.per_second, burst=q.burst) for action, q in settings.quotas.items()},
        max_workers=settings.max_workers, connect_timeout_seconds=settings.connect_timeout_seconds,
        read_timeout_seconds=settings.read_timeout_seconds, clock=clock)


def _label(attempt: Attempt) -> str:
    shape, spot = attempt
    return f"{shape.label()}{' (spot)' if spot else ''}"


def _initial(pod: ResolvedPod) -> PodStatusUpdate:
    """What the pod looks like the moment its group was accepted: every container waiting."""
    def waiting(container: Any, reason: str) -> ContainerStatus:
        return ContainerStatus(str(container.get("name", "")), ContainerState("waiting", reason=reason),
                               image=str(container.get("image", "")))
    return PodStatusUpdate(ref=pod.ref, phase="Pending",
                           containers=tuple(waiting(c, "ContainerCreating") for c in pod.containers),
                           init_containers=tuple(waiting(c, "PodInitializing") for c in pod.init_containers))


class EciProvider:
    def __init__(self, settings: EciProviderSettings, clock: Clock, *, node_name: str,
                 client: EciClient | None = None) -> None:
        # The SDK logs every error answer at ERROR (vnode logs its own, once, with the pod it concerns) and every
        # request's parameters, an STS SecurityToken included, at DEBUG: silence it whatever the root level is.
        logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL + 1)
        self._settings, self._clock, self._node = settings, clock, node_name
        self._owns_client = client is None  # a client handed in belongs to the caller, who closes it
        self._client = client or build_client(settings, clock)
        self._tags = node_tags(settings.cluster_name, node_name)
        self._cache = GroupCache()
        self._poller = StatusPoller(self._client, clock, settings, cache=self._cache, tags=self._tags,
                                    push=self._push)
        self._logs = EciLogReader(self._client, clock, poll_seconds=settings.log_poll_seconds)
        self._exec = EciExecBridge(self._client)
        self._creating: set[str] = set()  # pod UIDs with a create in flight: the sweep leaves their groups alone
        self._resume: dict[str, int] = {}  # pod UID → the attempt whose outcome is unknown (retry its token)
        self._listed = False  # list_pods has adopted what the node had: the sweep may start
        self._notify: StatusCallback | None = None

    # Contract: node

    def describe(self) -> NodeDescription:
        return NodeDescription(provider="eci", container_runtime_version="eci://2018-08-08",
                               os_image="Alibaba Cloud ECI")

    def capacity(self) -> NodeResources:
        gpu = self._settings.capacity_gpu
        return NodeResources(cpu=self._settings.capacity_cpu, memory=self._settings.capacity_memory,
                             pods=self._settings.capacity_pods, extended={"nvidia.com/gpu": gpu} if gpu else {})

    async def ping(self) -> None:
        """One cheap tag-filtered list; BackendUnavailable (network, 5xx) makes the node NotReady."""
        try:
            await self._client.describe_container_groups(tags=self._tags, limit=1)
        except Throttled:
            return  # ECI answered: it is up, only busy

    # Contract: pods

    async def create_pod(self, pod: ResolvedPod) -> None:
        uid = pod.ref.uid
        known = self._cache.by_uid(uid)
        if known is not None and not known.deleted and known.current().reason != status.LOST_REASON:
            return  # already created (or adopted); only a group lost outside vnode is made again
        plan = plan_create(pod, self._settings, node_name=self._node)  # InvalidPod names the field
        self._creating.add(uid)
        try:
            if not self._listed:
                # Before list_pods a previous vnode's group may exist: adopt it rather than make a second one.
                found = await self._find_group(uid)
                if found is not None:
                    record = self._adopt(found)
                    if record is not None:
                        self._push(record.current())
                        return
            await self._create(pod, plan)
        finally:
            self._creating.discard(uid)

    async def _create(self, pod: ResolvedPod, plan: CreatePlan) -> None:
        uid, tried = pod.ref.uid, attempts(plan)
        refused: list[str] = []
        for n in range(self._resume.pop(uid, 0), len(tried)):
            # Deterministic per attempt: a retry, or a restarted vnode, gets the group this attempt made, if any.
            params = {**plan.attempt_params(tried[n][0], spot=tried[n][1]), "ClientToken": client_token(uid, str(n))}
            try:
                group_id = await self._patiently(params)
            except VnodeError as exc:
                code = error_code(exc)
                if code not in NEXT_SHAPE_CODES:
                    if isinstance(exc, Retryable):
                        self._resume[uid] = n  # it may have been created: the next try repeats this token
                    raise
                refused.append(f"{_label(tried[n])}: {code}")
                self._shape_refused(pod, tried, n, code)
                continue
            record = GroupRecord(ref=pod.ref, group_id=group_id, fail_fast=plan.fail_on_create_error,
                                 images={str(c.get("name")): str(c.get("image", "")) for c in pod.containers})
            self._cache.add(record)
            log.info("pod %s: ECI container group %s (%s)", pod.ref.key, group_id, _label(tried[n]))
            self._poller.report(record, _initial(pod))
            return
        message = f"ECI refused every shape ({'; '.join(refused)})"
        if plan.fail_on_create_error:
            # k8s.aliyun.com/pod-fail-on-create-err: fail now instead of waiting for stock.
            raise InvalidPod(f"ContainerInstanceScheduleFailed: {message}")
        raise Retryable(f"{message}; trying again later")

    async def _patiently(self, params: dict[str, Any]) -> str:
        """CreateContainerGroup, waiting out ECI's throttling (its create bucket refills at 20/s) for up to
        THROTTLE_PATIENCE_SECONDS: a burst of pods is queued, not reported failing."""
        deadline = self._clock.monotonic() + THROTTLE_PATIENCE_SECONDS
        while True:
            try:
                return await self._client.create_container_group(params)
            except Throttled as exc:
                wait = min(exc.retry_after_seconds or 1.0, _THROTTLE_WAIT_MAX_SECONDS)
                if error_code(exc) in _QUOTA_CODES or self._clock.monotonic() + wait > deadline:
                    raise
                log.debug("CreateContainerGroup throttled; trying again in %.1f s", wait)
                await self._clock.sleep(wait)

    def _shape_refused(self, pod: ResolvedPod, tried: list[Attempt], n: int, code: str | None) -> None:
        then = f"; trying {_label(tried[n + 1])}" if n + 1 < len(tried) else ""
        message = f"ECI refused shape {_label(tried[n])}: {code}{then}"
        log.info("pod %s: %s", pod.ref.key, message)
        pending = replace(_initial(pod), reason=SHAPE_REASON, message=message)
        self._push(replace(pending, events=(ProviderEvent("Warning", SHAPE_REASON, message),)))

    async def update_pod(self, pod: ResolvedPod) -> None:
        record = self._cache.by_uid(pod.ref.uid)
        if record is None or record.images is None:
            return
        if {str(c.get("name")): str(c.get("image", "")) for c in pod.containers} != dict(record.images):
            # UpdateContainerGroup restarts the whole group: not what a Kubernetes image change means.
            raise NotSupported("the ECI provider cannot change a running pod's container images")

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        """DeleteContainerGroup (ECI stops the containers with the TerminationGracePeriodSeconds given at create),
        then the pod's final status: what ECI last said, its running containers terminated."""
        self._resume.pop(ref.uid, None)
        record = self._cache.by_uid(ref.uid)
        if record is None:
            found = await self._find_group(ref.uid)
            record = self._adopt(found, ref) if found is not None else None
            if record is None:
                return
        if not record.deleted:
            try:
                await self._client.delete_container_group(record.group_id,
                                                          client_token=client_token(ref.uid, record.group_id))
            except NotFound:
                pass  # already gone
            except Conflict as exc:  # IncorrectStatus: ECI is still busy with the group (e.g. scheduling)
                raise Retryable(f"ECI cannot delete container group {record.group_id} yet: {exc}") from exc
            record.deleted = True
            log.info("pod %s: deleted ECI container group %s", ref.key, record.group_id)
        final = replace(status.deleted(record.current()), annotations=dict(record.annotations))
        record.update = final
        self._push(final)

    async def list_pods(self) -> list[PodStatusUpdate]:
        """Every group tagged for this node (DescribeContainerGroups, 20 per page), adopted into the cache."""
        listed: dict[str, PodStatusUpdate] = {}
        async for group in self._node_groups():
            record = self._adopt(group)
            if record is not None and not record.deleted:
                listed[record.ref.uid] = record.current()
        for record in self._cache.records():  # created since, or not listed yet by ECI
            if not record.deleted and record.ref.uid not in listed:
                listed[record.ref.uid] = record.current()
        self._listed = True
        return list(listed.values())

    async def run(self, notify: StatusCallback) -> None:
        """Poll status and events and sweep orphans until cancelled; then stop the loops and close the exec
        bridge and the client (if this provider made it). Groups keep running in ECI."""
        self._notify = notify
        tasks = TaskSupervisor("eci provider")
        try:
            tasks.spawn(self._poller.status_loop(), name="status polls")
            tasks.spawn(self._poller.events_loop(), name="event polls")
            tasks.spawn(self._poller.facts_loop(), name="instance facts")
            tasks.spawn(self._sweep_loop(), name="orphan sweeps")
            await tasks.failed.wait()
            raise RuntimeError("an ECI provider loop stopped") from tasks.failure
        finally:
            self._notify = None
            await tasks.stop()
            await self._exec.aclose()
            if self._owns_client:
                await self._client.aclose()

    # Streams

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        return self._logs_of(ref, container, options)

    async def _logs_of(self, ref: PodRef, container: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        record = self._record(ref)
        chunks: AsyncIterator[bytes] = self._logs.read(
            record.group_id, container, options, still_running=lambda: not (record.terminal or record.deleted))
        async for chunk in chunks:
            yield chunk

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        return await self._exec.exec(self._record(ref).group_id, container, command, io)

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        raise NotSupported("ECI has no API to attach to a container's main process; use kubectl exec or logs")

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        raise NotSupported("ECI has no port-forward API; expose the port through a Service or use kubectl exec")

    async def stats(self) -> UsageSnapshot:
        running = [r for r in self._cache.records() if not r.deleted and r.update is not None
                   and r.update.phase == "Running"]
        starts = {r.group_id: r.update.start_time for r in running if r.update and r.update.start_time}
        return await usage_snapshot(self._client, {r.group_id: r.ref for r in running}, self._clock,
                                    start_times=starts)

    def _record(self, ref: PodRef) -> GroupRecord:
        record = self._cache.by_uid(ref.uid)
        if record is None:
            raise NotFound(f"pod {ref.key} has no ECI container group on this node")
        return record

    # Internals

    def _push(self, update: PodStatusUpdate) -> None:
        if self._notify is not None:
            self._notify(update)

    async def _node_groups(self) -> AsyncIterator[dict[str, Any]]:
        token = ""
        while True:
            answer = ci(await self._client.describe_container_groups(tags=self._tags, limit=GROUPS_PAGE,
                                                                     next_token=token))
            groups = ci_list(answer.get("containergroups"))
            for group in groups:
                yield group
            token = text(answer, "nexttoken")
            if not token or not groups:
                return

    async def _find_group(self, uid: str) -> dict[str, Any] | None:
        """This node's group for pod `uid`, by its tags (the newest when there are several)."""
        answer = ci(await self._client.describe_container_groups(tags={**self._tags, TAG_UID: uid},
                                                                 limit=GROUPS_PAGE))
        groups = ci_list(answer.get("containergroups"))
        return groups[-1] if groups else None

    def _adopt(self, group: dict[str, Any], ref: PodRef | None = None) -> GroupRecord | None:
        """A group found in ECI as a cache record (the one already cached for it, if any)."""
        tags = {text(tag, "key"): text(tag, "value") for tag in ci_list(group.get("tags"))}
        ref = ref_from_tags(tags) or ref
        group_id = text(group, "containergroupid")
        if ref is None or not group_id:
            return None
        known = self._cache.by_uid(ref.uid)
        if known is not None and known.group_id == group_id:
            return known
        record = GroupRecord(ref=ref, group_id=group_id, group_status=text(group, "status"),
                             fail_fast=self._settings.fail_on_create_error)
        update = status.from_group_item(group, ref, fail_fast=record.fail_fast)
        if record.group_status not in ("", "Scheduling", "ScheduleFailed"):
            record.annotations, record.facts_known = status.instance_annotations(group), True
        record.update = replace(update, annotations=dict(record.annotations))
        log.info("pod %s: adopted ECI container group %s (%s)", ref.key, group_id, record.group_status)
        return self._cache.add(record)

    async def _sweep_loop(self) -> None:
        while True:
            await self._clock.sleep(self._settings.orphan_sweep_seconds)
            if self._listed:
                try:
                    await self.sweep_orphans()
                except VnodeError as exc:
                    log.warning("ECI orphan sweep failed (%s); trying again next sweep", exc)

    async def sweep_orphans(self) -> list[str]:
        """Delete this node's groups whose pod this provider neither created nor adopted and is not creating
        (a create whose answer was lost, a previous vnode's last create): they cost money. Their ids.

        Candidates are the groups status polls saw without a record (a full list runs every
        `full_resync_seconds`), looked up by id: the calls grow with strangers, not with the node's pods."""
        deleted: list[str] = []
        strangers = self._poller.take_strangers()
        groups: list[dict[str, Any]] = []
        for batch in chunks(strangers, GROUPS_PAGE):
            groups.extend((await self._poller.describe(batch)).values())
        for group in groups:
            tags = {text(tag, "key"): text(tag, "value") for tag in ci_list(group.get("tags"))}
            ref, group_id = ref_from_tags(tags), text(group, "containergroupid")
            if ref is None or not group_id or ref.uid in self._creating or self._cache.by_uid(ref.uid) is not None:
                continue
            log.info("deleting orphaned ECI container group %s (pod %s, uid %s): no pod of this node owns it",
                     group_id, ref.key, ref.uid)
            try:
                await self._client.delete_container_group(group_id, client_token=client_token(ref.uid, group_id))
            except NotFound:
                continue
            deleted.append(group_id)
        return deleted
