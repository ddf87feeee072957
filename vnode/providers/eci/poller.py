"""The ECI provider's view of its groups (`GroupCache`) and the polls that keep it current (`StatusPoller`).

ECI pushes nothing, so status comes from polling, at a cost that does not grow with the number of pods: one
tag-filtered DescribeContainerGroupStatus per `status_poll_seconds` (paged by 200) over the last `SinceSecond`
window, a full list every `full_resync_seconds`, one DescribeContainerGroupEvents per `events_poll_seconds`, and one
DescribeContainerGroups per 20 groups that newly reached Pending (their instance facts, once, in a loop of their own:
a burst of thousands of new groups must not hold up the status of the next poll). Windows overlap, so
an update is pushed only when it differs from the cache. A terminal status is final here: ECI forgets a finished
group after an hour, vnode does not change its mind. Errors are logged and the next tick tries again; nothing here
fails or deletes a pod because ECI could not be reached. It must not create or delete groups.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from vnode.clock import Clock
from vnode.config import EciProviderSettings
from vnode.errors import VnodeError
from vnode.providers.base import PodRef, PodStatusUpdate, ProviderEvent
from vnode.providers.eci import status
from vnode.providers.eci.client import EciClient, tag_params
from vnode.providers.eci.events import EventDedup, groups_events, matched_image_cache
from vnode.providers.eci.status import ci, ci_list, text

log = logging.getLogger(__name__)
T = TypeVar("T")
# SinceSecond takes 60..3600 (eci-wire.md §3); a longer gap needs a full list.
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 60, 3600
# Slack for the difference between vnode's and ECI's clocks at the window's edge.
_WINDOW_SLACK_SECONDS = 5.0
# DescribeContainerGroupStatus pages hold up to 200 items; DescribeContainerGroups ids lists up to 20.
STATUS_PAGE, GROUPS_PAGE = 200, 20
# A group missing from this many full lists in a row is looked up by id before it is declared lost: a list may lag
# behind a create, and a RAM identity without permission gets an empty list rather than an error.
_MISSES_BEFORE_LOST = 2
# One tick may page through many answers, each retried by the client; past this the tick is abandoned.
TICK_TIMEOUT_SECONDS = 120.0
# Group statuses before ECI has placed the instance: no zone or instance type to publish yet.
_UNPLACED = ("", "Scheduling", "ScheduleFailed")


@dataclass
class GroupRecord:
    """One container group of this node and what vnode last told about its pod."""

    ref: PodRef
    group_id: str
    update: PodStatusUpdate | None = None  # the last status pushed, without events
    group_status: str = ""  # ECI's Status as last seen
    annotations: dict[str, str] = field(default_factory=dict)
    facts_known: bool = False
    deleted: bool = False  # vnode deleted the group
    fail_fast: bool = False  # k8s.aliyun.com/pod-fail-on-create-err
    images: Mapping[str, str] | None = None  # container → image, when vnode created the group
    missing: int = 0  # full lists in a row without it

    @property
    def terminal(self) -> bool:
        return self.update is not None and self.update.phase in status.TERMINAL

    def current(self) -> PodStatusUpdate:
        return self.update or PodStatusUpdate(ref=self.ref, phase="Pending")


class GroupCache:
    """Groups by pod UID and by group id. A record is forgotten once its group is gone and its status final."""

    def __init__(self) -> None:
        self._by_uid: dict[str, GroupRecord] = {}
        self._uid_of: dict[str, str] = {}

    def add(self, record: GroupRecord) -> GroupRecord:
        old = self._by_uid.get(record.ref.uid)
        if old is not None:
            self._uid_of.pop(old.group_id, None)
        self._by_uid[record.ref.uid] = record
        self._uid_of[record.group_id] = record.ref.uid
        return record

    def by_uid(self, uid: str) -> GroupRecord | None:
        return self._by_uid.get(uid)

    def by_group(self, group_id: str) -> GroupRecord | None:
        uid = self._uid_of.get(group_id)
        return self._by_uid.get(uid) if uid is not None else None

    def forget(self, record: GroupRecord) -> None:
        if self._by_uid.get(record.ref.uid) is record:
            del self._by_uid[record.ref.uid]
            self._uid_of.pop(record.group_id, None)

    def records(self) -> list[GroupRecord]:
        return list(self._by_uid.values())

    def __len__(self) -> int:
        return len(self._by_uid)


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def window_seconds(last_ok: float | None, now: float) -> int | None:
    """The SinceSecond that covers everything since the last successful poll began; None when only a full list
    can (first poll, or a gap longer than ECI's longest window)."""
    if last_ok is None:
        return None
    gap = now - last_ok + _WINDOW_SLACK_SECONDS
    return None if gap > MAX_WINDOW_SECONDS else max(MIN_WINDOW_SECONDS, math.ceil(gap))


class StatusPoller:
    def __init__(self, client: EciClient, clock: Clock, settings: EciProviderSettings, *, cache: GroupCache,
                 tags: Mapping[str, str], push: Callable[[PodStatusUpdate], None]) -> None:
        self._client = client
        self._clock = clock
        self._settings = settings
        self._cache = cache
        self._tags = dict(tags)  # this node's groups: cluster and node tags
        self._push = push
        self._events = EventDedup()
        self._facts_wanted = asyncio.Event()  # a status poll saw groups placed: facts_loop looks them up
        # Node-tagged groups a status poll saw that no record owns: the orphan sweep looks only at these, so it
        # costs calls per stranger, not per pod.
        self._strangers: set[str] = set()

    # Reporting

    def report(self, record: GroupRecord, update: PodStatusUpdate, events: tuple[ProviderEvent, ...] = ()) -> None:
        """Push `update` (with the record's annotations) if it says something new, or carries events."""
        update = replace(update, annotations=dict(record.annotations), events=())
        if update != record.update:
            record.update = update
        elif not events:
            return
        self._push(replace(update, events=events))

    def forget(self, record: GroupRecord) -> None:
        self._cache.forget(record)
        self._events.forget(record.group_id)

    # Loops

    async def status_loop(self) -> None:
        last_ok: float | None = None
        next_full = self._clock.monotonic()
        while True:
            started = self._clock.monotonic()
            since = None if started >= next_full else window_seconds(last_ok, started)
            if await self._tick("status poll", self.poll_status(since_seconds=since)):
                last_ok = started
                if since is None:
                    next_full = started + self._settings.full_resync_seconds
            await self._clock.sleep(self._settings.status_poll_seconds)

    async def events_loop(self) -> None:
        last_ok: float | None = None
        while True:
            started = self._clock.monotonic()
            # The first poll also takes the last minute only: older events were told by the vnode before.
            since = MIN_WINDOW_SECONDS if last_ok is None else window_seconds(last_ok, started)
            if await self._tick("event poll", self.poll_events(since_seconds=since)):
                last_ok = started
            await self._clock.sleep(self._settings.events_poll_seconds)

    async def facts_loop(self) -> None:
        while True:
            await self._facts_wanted.wait()
            self._facts_wanted.clear()
            await self._tick("instance facts lookup", self._fetch_facts())

    async def _tick(self, what: str, work: Awaitable[None]) -> bool:
        try:
            async with asyncio.timeout(TICK_TIMEOUT_SECONDS):
                await work
        except TimeoutError:
            log.warning("ECI %s took longer than %.0f s; trying again next tick", what, TICK_TIMEOUT_SECONDS)
            return False
        except VnodeError as exc:
            log.warning("ECI %s failed (%s); trying again next tick", what, exc)
            return False
        return True

    # Status

    async def poll_status(self, *, since_seconds: int | None) -> None:
        """One windowed (or, with None, full) status list of this node's groups, paged."""
        known = {record.ref.uid: record.group_id for record in self._cache.records()}
        seen: set[str] = set()
        token = ""
        while True:
            answer = ci(await self._client.describe_container_group_status(
                tags=self._tags, since_seconds=since_seconds, limit=STATUS_PAGE, next_token=token))
            items = ci_list(answer.get("data"))
            for item in items:
                group_id = text(item, "containergroupid")
                seen.add(group_id)
                self._apply(group_id, item)
            token = text(answer, "nexttoken")
            if not token or not items:
                break
        if since_seconds is None:
            await self._check_absent(known, seen)
        self._facts_wanted.set()

    def _apply(self, group_id: str, item: Mapping[str, Any]) -> None:
        record = self._cache.by_group(group_id)
        if record is None:
            self._strangers.add(group_id)  # not ours yet (a create in flight) or an orphan: the sweep decides
            return
        if record.deleted:
            return
        record.group_status, record.missing = text(item, "status"), 0
        if record.terminal:
            return
        update = status.from_status_item(item, record.ref, previous=record.update, fail_fast=record.fail_fast)
        if update is not None:
            self.report(record, update)

    async def _check_absent(self, known: Mapping[str, str], seen: set[str]) -> None:
        """Groups a full list no longer has: finished or deleted ones are forgotten, others looked up and, if ECI
        has none, reported lost (deleted outside vnode)."""
        suspects: list[GroupRecord] = []
        for uid, group_id in known.items():
            record = self._cache.by_uid(uid)
            if record is None or record.group_id != group_id or group_id in seen:
                continue
            if record.deleted or record.terminal:
                self.forget(record)
                continue
            record.missing += 1
            if record.missing >= _MISSES_BEFORE_LOST:
                suspects.append(record)
        for batch in chunks(suspects, GROUPS_PAGE):
            found = await self.describe([record.group_id for record in batch])
            for record in batch:
                group = found.get(record.group_id)
                if group is not None:
                    record.missing = 0
                    self.report(record, status.from_group_item(group, record.ref, fail_fast=record.fail_fast))
                elif not record.deleted and not record.terminal:
                    log.warning("pod %s: its ECI container group %s is gone", record.ref.key, record.group_id)
                    self.report(record, status.lost(record.current()))

    def take_strangers(self) -> list[str]:
        """The groups seen without a record since the last call (the sweep's candidates)."""
        strangers = sorted(g for g in self._strangers if self._cache.by_group(g) is None)
        self._strangers.clear()
        return strangers

    async def describe(self, group_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """DescribeContainerGroups by id (≤ 20): the groups ECI has, by id."""
        answer = ci(await self._client.describe_container_groups(ids=list(group_ids), limit=GROUPS_PAGE))
        return {text(group, "containergroupid"): group for group in ci_list(answer.get("containergroups"))}

    async def _fetch_facts(self) -> None:
        """Instance facts (zone, shape, spot) of groups ECI has placed, once per group, 20 per call."""
        wanted = [record for record in self._cache.records()
                  if not record.facts_known and not record.deleted and record.group_status not in _UNPLACED]
        for batch in chunks(wanted, GROUPS_PAGE):
            found = await self.describe([record.group_id for record in batch])
            for record in batch:
                record.facts_known = True
                group = found.get(record.group_id)
                if group is not None:
                    self.learn_facts(record, group)

    def learn_facts(self, record: GroupRecord, group: Mapping[str, Any]) -> None:
        record.facts_known = True
        record.annotations.update(status.instance_annotations(group))
        if record.update is not None:
            self.report(record, record.update)

    # Events

    async def poll_events(self, *, since_seconds: int | None) -> None:
        answer = await self._client.call("DescribeContainerGroupEvents", {
            "SinceSecond": since_seconds, "Limit": STATUS_PAGE, **tag_params(self._tags)}, mutating=False)
        for group_id, raw in groups_events(answer):
            record = self._cache.by_group(group_id)
            if record is None or record.deleted:
                continue
            fresh = self._events.fresh(group_id, raw)
            if not fresh:
                continue
            cache_id = matched_image_cache(fresh)
            if cache_id:
                record.annotations[status.ANN_IMAGE_CACHE] = cache_id
            self.report(record, record.current(), tuple(fresh))
