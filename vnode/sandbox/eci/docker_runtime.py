"""`DockerRuntime`: a container group's containers run on the local Docker engine, through the Docker provider.

Each group becomes a synthetic pod (`group_pod`) that `vnode.providers.docker.provider.DockerProvider` runs: its
status updates (through `notify`) become the group's ECI status and container states (`docker_state`); logs and
exec are the provider's. Work on one group (create, delete, restart) runs in order in a task of its own; a spot
release waits in a timer task; `run` owns them all, runs the provider, and when it ends removes every container the
emulator started (an emulator that stops forgets its groups, so nothing of them may stay in the engine). Containers
carry the node name `docker_node_name`; at start, anything of that node left by an earlier emulator is removed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from vnode.clock import Clock, SystemClock
from vnode.config import DockerProviderSettings, EciEmulatorSettings
from vnode.errors import InvalidPod, NotFound, Retryable, VnodeError
from vnode.providers.base import PodStatusUpdate
from vnode.providers.docker.provider import DockerProvider
from vnode.providers.streams import LogOptions, StreamIO
from vnode.sandbox.eci.docker_state import DockerGroup
from vnode.sandbox.eci.group_pod import Unsupported, group_pod, pod_ref
from vnode.sandbox.eci.model import ContainerGroup, ContainerState
from vnode.sandbox.eci.runtime import TERMINAL, ContainerNotRunning, GroupSnapshot

log = logging.getLogger(__name__)
PING_TIMEOUT_SECONDS = 2.0
WORKERS_DRAIN_SECONDS = 5.0
CLEANUP_TIMEOUT_SECONDS = 6.0  # with the drain, within the emulator's 15 s shutdown
_CLEANUP_POLL_SECONDS = 0.2
_CREATE_ATTEMPTS = 5
DEFAULT_GRACE_SECONDS = 30  # ECI's TerminationGracePeriodSeconds default


async def docker_engine_reachable(settings: DockerProviderSettings, *,
                                  timeout_seconds: float = PING_TIMEOUT_SECONDS) -> bool:
    """Whether the engine `settings` names answers a ping within `timeout_seconds`."""
    provider = DockerProvider(settings, SystemClock(), node_name="eci-emulator-ping")
    try:
        async with asyncio.timeout(timeout_seconds):
            await provider.ping()
        return True
    except (TimeoutError, VnodeError):
        return False
    finally:
        await provider.close()


class DockerRuntime:
    def __init__(self, settings: EciEmulatorSettings, clock: Clock) -> None:
        self._settings = settings.docker
        self._clock = clock
        self._node = settings.docker_node_name
        self._provider = DockerProvider(settings.docker, clock, node_name=self._node)
        self._groups: dict[str, DockerGroup] = {}  # by group id
        self._leaving: list[DockerGroup] = []  # deleted groups whose removal has not run yet
        self._by_uid: dict[str, str] = {}  # pod UID of a group's current run → group id
        self._timers: set[asyncio.Task[None]] = set()
        self._running = False

    # Owner of everything

    async def run(self) -> None:
        provider = asyncio.create_task(self._provider.run(self._on_update), name="eci docker runtime: provider")
        try:
            await self._provider.ping()
            await self._remove_leftovers()
            self._running = True
            for state in [*self._groups.values(), *self._leaving]:
                self._kick(state)
            # Not `await provider`: our cancellation would reach it too, and it must outlive the cleanup below.
            await asyncio.wait({provider})
            provider.result()
            raise RuntimeError("the Docker provider stopped")
        finally:
            self._running = False
            try:
                workers = [s.worker for s in [*self._groups.values(), *self._leaving] if s.worker is not None]
                # A create cancelled mid-request still lands in the engine (slowly, with vfs), after the cleanup
                # below has looked: let the steps in flight finish first, within a bound.
                if workers:
                    await asyncio.wait(workers, timeout=WORKERS_DRAIN_SECONDS)
                tasks = [*self._timers, *workers]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                try:
                    await self._remove_everything()
                except Exception:
                    log.warning("eci docker runtime: containers may be left in the engine", exc_info=True)
            finally:
                provider.cancel()
                await asyncio.gather(provider, return_exceptions=True)

    def _submit(self, state: DockerGroup, op: Callable[[], Awaitable[None]]) -> None:
        state.ops.append(op)
        self._kick(state)

    def _kick(self, state: DockerGroup) -> None:
        if self._running and state.ops and state.worker is None:
            state.worker = asyncio.create_task(self._work(state), name=f"eci docker runtime: {state.group.id}")

    async def _work(self, state: DockerGroup) -> None:
        try:
            while state.ops:
                op = state.ops.popleft()
                try:
                    await op()
                except Exception:
                    log.exception("container group %s: a docker runtime step failed", state.group.id)
        finally:
            state.worker = None
            if state.deleted and not state.ops and state in self._leaving:
                self._leaving.remove(state)

    def _spawn_timer(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    # Lifecycle

    def check(self, group: ContainerGroup) -> None:
        """Nothing to refuse at create: what the engine cannot run fails the group when it starts, as ECI does."""

    def start(self, group: ContainerGroup) -> None:
        state = DockerGroup(group, group.id, created=group.created)
        state.note(self._clock.now())
        self._groups[group.id] = state
        self._by_uid[group.id] = group.id
        self._submit(state, lambda: self._create(state))

    def stop(self, group: ContainerGroup) -> None:
        state = self._groups.pop(group.id, None)
        if state is None:
            return
        state.deleted = True
        self._leaving.append(state)
        self._by_uid.pop(state.uid, None)
        uid, grace = state.uid, self._grace(state.group)
        self._submit(state, lambda: self._provider.delete_pod(pod_ref(state.group, uid), grace))

    def restart(self, group: ContainerGroup) -> None:
        self._next_run(group, "Restarting")

    def update(self, group: ContainerGroup) -> None:
        self._next_run(group, "Updating")

    def release(self, group: ContainerGroup, notice_seconds: float) -> None:
        state = self._state(group)
        now = self._clock.now()
        state.event(now, "Warning", "SpotToBeReleased",
                    f"Spot ECI will be released in {notice_seconds / 60:g} minutes")
        self._spawn_timer(self._reclaim_after(state, notice_seconds), f"eci spot release {group.id}")

    def _next_run(self, group: ContainerGroup, interlude: str) -> None:
        state = self._state(group)
        now = self._clock.now()
        old_uid, old_group = state.uid, state.group
        state.carried = state.carry_over(now)
        state.epoch += 1
        state.uid = f"r{state.epoch}.{group.id}"  # a new pod: its containers' names differ from the old run's
        state.group, state.update, state.interlude, state.submitted = group, None, interlude, False
        self._by_uid.pop(old_uid, None)
        self._by_uid[state.uid] = group.id
        state.note(now)
        grace = self._grace(old_group)
        self._submit(state, lambda: self._provider.delete_pod(pod_ref(old_group, old_uid), grace))
        self._submit(state, lambda: self._create(state))

    async def _create(self, state: DockerGroup) -> None:
        if state.deleted or state.failure:
            return
        try:
            pod = group_pod(state.group, state.uid)
        except Unsupported as exc:
            self._fail(state, "FailedMount", str(exc))
            return
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                await self._provider.create_pod(pod)
                break
            except InvalidPod as exc:
                self._fail(state, "Failed", f"Error: {exc}")
                return
            except Retryable as exc:
                state.event(self._clock.now(), "Warning", "Failed", f"Error: {exc}")
                if attempt == _CREATE_ATTEMPTS:
                    self._fail(state, "Failed", f"Error: {exc}")
                    return
                await self._clock.sleep(self._settings.restart_backoff_seconds * attempt)
        now = self._clock.now()
        state.submitted = True
        if state.scheduled_at is None:
            state.scheduled_at = now
            state.event(now, "Normal", "Scheduled", f"Successfully assigned {state.group.id} to "
                        f"{state.group.zone_id}")
        state.note(now)

    def _fail(self, state: DockerGroup, reason: str, message: str) -> None:
        now = self._clock.now()
        state.failure = reason
        state.frozen = {name: ContainerState("Waiting", "CreateContainerConfigError", message=message,
                                             restart_count=s.restart_count, last=s.last)
                        for name, s in state.states().items()}
        state.event(now, "Warning", reason, message)
        state.note(now)

    async def _reclaim_after(self, state: DockerGroup, notice_seconds: float) -> None:
        await self._clock.sleep(notice_seconds)
        if state.deleted or state.status() in TERMINAL:
            return
        now = self._clock.now()
        state.frozen = {name: s if s.state == "Terminated" else ContainerState(
            "Terminated", "SpotReleased", s.started, now, 137, s.restart_count, s.last)
            for name, s in state.states().items()}
        state.failure = "SpotReleased"
        state.event(now, "Warning", "SpotReleased", "The spot instance was reclaimed and its containers were stopped")
        state.note(now)
        uid = state.uid
        self._by_uid.pop(uid, None)
        self._submit(state, lambda: self._provider.delete_pod(pod_ref(state.group, uid), 0))

    def _on_update(self, update: PodStatusUpdate) -> None:
        group_id = self._by_uid.get(update.ref.uid)
        state = self._groups.get(group_id or "")
        if state is None or state.uid != update.ref.uid or state.failure:
            return  # an earlier run, a deleted group, or a reclaimed instance
        now = self._clock.now()
        for event in update.events:
            state.event(now, event.type, event.reason, event.message)
        state.update = replace(update, events=())
        state.note(now)

    # State

    def snapshot(self, group: ContainerGroup, now: datetime) -> GroupSnapshot:
        return self._state(group).snapshot(now)

    def group_status(self, group: ContainerGroup, now: datetime) -> str:
        return self._state(group).status()

    def container_state(self, group: ContainerGroup, container: str, now: datetime) -> ContainerState:
        state = self._state(group).states().get(container)
        if state is None:
            raise NotFound(f'container "{container}" not found in container group "{group.name}"')
        return state

    def last_transition(self, group: ContainerGroup, now: datetime) -> datetime:
        return self._state(group).snapshot(now).last_transition

    def ended_at(self, group: ContainerGroup, now: datetime) -> datetime | None:
        state = self._state(group)
        return state.ended_at if state.status() in TERMINAL else None

    def _state(self, group: ContainerGroup) -> DockerGroup:
        state = self._groups.get(group.id)
        if state is None:
            raise NotFound(f"container group {group.id} is not known to the docker runtime")
        return state

    @staticmethod
    def _grace(group: ContainerGroup) -> int:
        grace = group.termination_grace_period_seconds
        return DEFAULT_GRACE_SECONDS if grace is None else grace

    # Streams

    async def logs(self, group: ContainerGroup, container: str, options: LogOptions) -> bytes:
        state = self._state(group)
        self.container_state(group, container, self._clock.now())
        if state.frozen is not None:
            raise NotFound(f'container "{container}" in pod "{group.name}" is gone: the instance was released')
        chunks = self._provider.container_logs(pod_ref(state.group, state.uid), container,
                                               replace(options, follow=False))
        return b"".join([chunk async for chunk in chunks])

    async def exec(self, group: ContainerGroup, container: str, command: Sequence[str], io: StreamIO) -> int:
        state = self._state(group)
        current = self.container_state(group, container, self._clock.now())
        if current.state != "Running":
            raise ContainerNotRunning(f'container "{container}" of container group "{group.name}" is not running '
                                      f"({current.state})")
        try:
            return await self._provider.exec(pod_ref(state.group, state.uid), container, command, io)
        except NotFound as exc:
            if "is not running" in str(exc):
                raise ContainerNotRunning(str(exc)) from exc
            raise

    # Engine housekeeping

    async def _remove_leftovers(self) -> None:
        """Remove what an earlier emulator with this node name left in the engine (its groups are forgotten)."""
        try:
            for update in await self._provider.list_pods():
                if update.ref.uid not in self._by_uid:
                    await self._provider.delete_pod(update.ref, 0)
        except VnodeError as exc:
            log.warning("eci docker runtime: cannot list leftover containers: %s", exc)

    async def _remove_everything(self) -> None:
        """Kill and remove every container of this node, waiting (bounded) until the engine has none left. A second
        provider, which runs nothing, reads the engine: the running one no longer lists pods it is removing. Pods
        are deleted again on every look, for one whose start was still creating containers."""
        engine = DockerProvider(self._settings, self._clock, node_name=self._node)
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT_SECONDS):
                while True:
                    try:
                        left = await engine.list_pods()
                    except Retryable:
                        left = None  # a container went away while it was read: look again
                    if left == []:
                        return
                    for update in left or ():
                        await self._provider.delete_pod(update.ref, 0)
                    await self._clock.sleep(_CLEANUP_POLL_SECONDS)
        finally:
            await engine.close()
