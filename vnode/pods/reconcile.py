"""Start-up reconciliation between the backend and the API, matched by pod UID, after the informer has synced.

Backend instances whose pod no longer exists are deleted (they cost money). Pods the backend still runs are
adopted as they are. A pod the backend lost after it had run is not silently recreated: with restartPolicy Never
it fails with a reason; otherwise it is recreated with an Event. Pods that never started are created as usual by
the spec queue. Nothing is deleted until the backend's list has been read successfully.
"""

from __future__ import annotations

import logging

from vnode.clock import Clock
from vnode.errors import Retryable
from vnode.kube.informer import Informer
from vnode.pods.status import TERMINAL_PHASES
from vnode.pods.sync import PodSync
from vnode.providers.base import PodStatusUpdate, Provider

log = logging.getLogger(__name__)


async def list_backend(provider: Provider, clock: Clock) -> list[PodStatusUpdate]:
    """The backend's pods; retried with backoff while the backend is unavailable."""
    delay = 0.2
    while True:
        try:
            return await provider.list_pods()
        except Retryable as exc:
            log.warning("cannot list backend pods yet (%s); retrying in %.1f s", exc, delay)
            await clock.sleep(delay)
            delay = min(delay * 2, 10.0)


def _has_run(pod: dict[str, object]) -> bool:
    status = pod.get("status") or {}
    assert isinstance(status, dict)
    return bool(status.get("startTime")) or status.get("phase") == "Running"


async def reconcile(sync: PodSync, provider: Provider, informer: Informer, *, clock: Clock) -> None:
    backend = await list_backend(provider, clock)
    pods_by_uid = {pod["metadata"]["uid"]: pod for pod in informer.list()}
    backend_uids = set()
    for update in backend:
        backend_uids.add(update.ref.uid)
        pod = pods_by_uid.get(update.ref.uid)
        if pod is None:
            log.info("deleting orphaned backend pod %s (uid %s): its pod no longer exists", update.ref.key,
                     update.ref.uid)
            await provider.delete_pod(update.ref, 0)
        else:
            sync.adopt(pod, update)
    for uid, pod in pods_by_uid.items():
        phase = (pod.get("status") or {}).get("phase")
        if uid in backend_uids or phase in TERMINAL_PHASES or pod["metadata"].get("deletionTimestamp"):
            continue
        if _has_run(pod):
            await sync.handle_lost(pod)
