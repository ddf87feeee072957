"""A Provider wrapper that records what every pod is billed for in the cost ledger.

Owns the accounting of billed time as status flows from the backend: on `create_pod` the pod's identity, build and
shape; on every status update the backend state (a billed interval opens or closes on each billed/unbilled change,
at the clock's time); on the terminal update the final cost, added to the update's annotations as `vnode.io/cost`
(see `pricing.format_cost`); on `delete_pod` the end of billing. It changes nothing else the wrapped provider does or
raises, and a ledger failure is logged, never raised into the pod path. It must not import the controllers.

After a restart, pods the ledger still has open continue where they were; those the backend no longer lists are
ended at the time `list_pods` found them gone (ECI keeps billing a group until it is deleted).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from vnode.clock import Clock
from vnode.config import CostSettings, EciPriceTable
from vnode.cost.identity import IdentityRules, PodIdentity, identify
from vnode.cost.ledger import CostLedger
from vnode.cost.ledger_rows import PodRecord, micros
from vnode.cost.metrics import CostMetrics
from vnode.cost.pricing import END_STATES, PriceBasis, Pricer, cost_of, format_cost, is_billed
from vnode.cost.shape import (
    ANNOTATION_INSTANCE_ID,
    BilledShape,
    SpecDefaults,
    SpecShapes,
    decimal_of,
    shape_from_annotations,
)
from vnode.providers.base import (
    PodRef,
    PodStatusUpdate,
    Provider,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.delegating import DelegatingProvider

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
COST_ANNOTATION = "vnode.io/cost"
_ENDED_KEPT = 4096  # ended pods' cost annotations remembered, so a late terminal update still gets its own
_PRUNE_TIMEOUT_SECONDS = 300.0
_INTERNED_KEPT = 1024
_V = TypeVar("_V", BilledShape, PriceBasis)


@dataclass(slots=True)
class _Live:
    """Kept for every pod being billed (thousands at once), so kept small: the record's shape and price basis are
    shared between pods of one template (`SpecShapes`, `Pricer`)."""

    record: PodRecord
    state: str = ""
    billed: bool = False
    since_us: int | None = None  # start of the open interval
    billed_micros: int = 0  # in closed intervals
    restored: bool = False  # loaded from the ledger and not heard of since


class CostRecordingProvider(DelegatingProvider):
    """`inner`, recording pod identities and billed states in the ledger; every other call passes through."""

    def __init__(self, inner: Provider, ledger: CostLedger, *, clock: Clock, provider_name: str,
                 settings: CostSettings | None = None, region_id: str = "", metrics: CostMetrics | None = None) -> None:
        super().__init__(inner)
        settings = settings or CostSettings()
        self._ledger = ledger
        self._clock = clock
        self._provider = provider_name
        self._metrics = metrics
        self._settings, self._region_id = settings, region_id
        self._pricer = Pricer(settings, region_id=region_id)
        self._rules = IdentityRules.from_settings(settings)
        self._defaults = SpecDefaults(cpu=decimal_of(settings.default_container_cpu),
                                      memory_gib=decimal_of(settings.default_container_memory_gib))
        self._spec_shapes = SpecShapes(self._defaults)
        self._retention = timedelta(days=settings.retention_days)
        self._prune_every = settings.prune_interval_seconds
        self._pods: dict[str, _Live] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()  # uid → its vnode.io/cost annotation
        self._interned: dict[object, object] = {}
        self._restore_lock = asyncio.Lock()
        self._restored = False

    def use_prices(self, table: EciPriceTable) -> None:
        """Price pods whose shape is set from now on with `table` (e.g. from `pricing.refresh_region_prices`);
        pods already priced keep the basis stored with them."""
        self._pricer = Pricer(self._settings.model_copy(update={"prices": table}), region_id=self._region_id)

    # Recorded calls

    async def run(self, notify: StatusCallback) -> None:
        await self._restore()
        pruner = asyncio.create_task(self._prune_loop(), name="cost ledger retention")
        try:
            await self.inner.run(lambda update: notify(self._observe(update)))
        finally:
            pruner.cancel()
            await asyncio.gather(pruner, return_exceptions=True)

    async def create_pod(self, pod: ResolvedPod) -> None:
        await self._restore()
        # Recorded before the call: a backend may report the pod's first status from inside create_pod.
        self._guard("create", pod.ref, lambda: self._on_create(pod))
        await self.inner.create_pod(pod)

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        await self._restore()
        await self.inner.delete_pod(ref, grace_period_seconds)
        # The backend accepted the delete: ECI stops billing a group once it is deleted.
        self._guard("delete", ref, lambda: self._end(ref.uid, "", self._clock.now()))

    async def list_pods(self) -> list[PodStatusUpdate]:
        await self._restore()
        pods = await self.inner.list_pods()
        present = {p.ref.uid for p in pods}
        now = self._clock.now()
        for uid, live in list(self._pods.items()):
            if live.restored and uid not in present:
                identity = live.record.identity
                self._guard("gone", PodRef(identity.namespace, identity.name, uid), partial(self._end, uid, "", now))
        return [self._observe(p) for p in pods]

    # Accounting

    def _observe(self, update: PodStatusUpdate) -> PodStatusUpdate:
        extra: dict[str, str] = {}
        self._guard("status", update.ref, lambda: extra.update(self._account(update)))
        return replace(update, annotations={**update.annotations, **extra}) if extra else update

    def _account(self, update: PodStatusUpdate) -> dict[str, str]:
        uid, now = update.ref.uid, self._clock.now()
        terminal = update.phase in ("Succeeded", "Failed") or update.backend_state in END_STATES
        if uid in self._ended:
            return {COST_ANNOTATION: self._ended[uid]} if terminal else {}
        live = self._pods.get(uid)
        if live is None:
            if terminal:
                return {}  # ended before this process knew it (e.g. before a restart): nothing left to bill
            live = self._adopt(update.ref, now)
        live.restored = False
        self._reshape(live, update, now)
        if terminal:
            return {COST_ANNOTATION: self._end(uid, update.phase, now)}
        state = update.backend_state or update.phase
        billed = is_billed(update.backend_state, update.phase)
        # A change of billing counts even under the same name: the eci provider's first update is the phase
        # Pending (not billed), and ECI's next may be its own billed Pending when the poll missed Scheduling.
        if state != live.state or billed != live.billed:
            self._close_interval(live, now)
            live.state, live.billed, live.since_us = state, billed, micros(now)
            self._ledger.set_state(uid, state, billed, now)
        return {}

    def _on_create(self, pod: ResolvedPod) -> None:
        if pod.ref.uid in self._ended:
            return
        identity = identify(pod.pod, provider=self._provider, rules=self._rules)
        live = self._pods.get(pod.ref.uid)
        if live is None:
            self._pods[pod.ref.uid] = live = _Live(self._record(identity, self._spec_shapes.of(pod.pod)))
        elif live.record.shape.reported:
            live.record = replace(live.record, identity=identity)
        else:
            live.record = self._record(identity, self._spec_shapes.of(pod.pod))
        live.restored = False
        self._ledger.upsert_pod(live.record, self._clock.now())

    def _adopt(self, ref: PodRef, now: datetime) -> _Live:
        """A pod heard of only through status (created before the ledger existed): costed at the default shape."""
        identity = PodIdentity(namespace=ref.namespace, name=ref.name, uid=ref.uid, provider=self._provider)
        live = self._pods[ref.uid] = _Live(self._record(identity, BilledShape(
            cpu=self._defaults.cpu, memory_gib=self._defaults.memory_gib)))
        self._ledger.upsert_pod(live.record, now)
        return live

    def _record(self, identity: PodIdentity, shape: BilledShape, instance_id: str = "") -> PodRecord:
        shape = self._intern(self._pricer.complete(shape))
        return PodRecord(identity=identity, shape=shape, basis=self._intern(self._pricer.basis(shape, self._provider)),
                         instance_id=instance_id)

    def _intern(self, value: _V) -> _V:
        """One object for equal shapes or price bases, so thousands of pods of a few kinds hold a few of them."""
        if len(self._interned) >= _INTERNED_KEPT and value not in self._interned:
            self._interned.clear()
        return self._interned.setdefault(value, value)  # type: ignore[return-value]

    def _reshape(self, live: _Live, update: PodStatusUpdate, now: datetime) -> None:
        shape = self._pricer.complete(shape_from_annotations(update.annotations, live.record.shape))
        instance_id = update.annotations.get(ANNOTATION_INSTANCE_ID, live.record.instance_id)
        if shape != live.record.shape or instance_id != live.record.instance_id:
            live.record = self._record(live.record.identity, shape, instance_id)
            self._ledger.upsert_pod(live.record, now)

    def _close_interval(self, live: _Live, now: datetime) -> None:
        if not live.billed or live.since_us is None:
            return
        spent = max(0, micros(now) - live.since_us)
        live.billed_micros += spent
        if self._metrics is not None:
            identity, record = live.record.identity, live.record
            self._metrics.add(namespace=identity.namespace, job=identity.build.job, currency=record.basis.currency,
                              seconds=decimal_of(spent) / 1_000_000, cost=cost_of(record.shape, record.basis, spent))

    def _end(self, uid: str, phase: str, now: datetime) -> str:
        """Stop billing the pod; its cost annotation (also for later terminal updates), "" when not billing it."""
        live = self._pods.pop(uid, None)
        if live is None:
            return ""
        self._close_interval(live, now)
        basis = live.record.basis
        annotation = format_cost(cost_of(live.record.shape, basis, live.billed_micros), basis.currency,
                                 basis.estimate)
        self._ended[uid] = annotation
        while len(self._ended) > _ENDED_KEPT:
            self._ended.popitem(last=False)
        self._ledger.end_pod(uid, now, phase)
        return annotation

    @staticmethod
    def _guard(what: str, ref: PodRef, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:
            log.exception("cost: recording %s of pod %s failed; the pod is not affected", what, ref.key)

    # Restart and retention

    async def _restore(self) -> None:
        async with self._restore_lock:
            if self._restored:
                return
            self._restored = True
            try:
                opened = await self._ledger.open_pods()
            except Exception:
                log.exception("cost: could not read open pods from the ledger; their billing restarts from now")
                return
            for pod in opened:
                uid = pod.record.identity.uid
                if uid not in self._pods:
                    self._pods[uid] = _Live(pod.record, state=pod.state, billed=pod.billed,
                                            since_us=None if pod.since is None else micros(pod.since),
                                            billed_micros=pod.billed_micros, restored=True)

    async def _prune_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(_PRUNE_TIMEOUT_SECONDS):
                    removed = await self._ledger.prune(self._clock.now() - self._retention)
                if removed:
                    log.info("cost: removed %d pods past the ledger's retention", removed)
            except Exception:
                log.exception("cost: ledger retention sweep failed")
            await self._clock.sleep(self._prune_every)


if TYPE_CHECKING:
    _check: type[Provider] = CostRecordingProvider
