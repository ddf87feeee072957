"""The sim runtime on its own, driven by a ManualClock: states, restarts, updates, spot release, logs, exec refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from vnode.clock import ManualClock
from vnode.errors import NotFound
from vnode.providers.streams import LogOptions, ResizeQueue, StreamIO
from vnode.sandbox.eci.model import ContainerGroup, ContainerSpec, Spot
from vnode.sandbox.eci.runtime import ContainerNotRunning
from vnode.sandbox.eci.sim_runtime import SimRuntime, SimTimings
from vnode.sandbox.eci.store import GroupStore

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def runtime(clock: ManualClock) -> SimRuntime:
    return SimRuntime(clock, SimTimings(scheduling_seconds=1, pending_seconds=2, restart_seconds=2))


def make(runtime: SimRuntime, clock: ManualClock, *, env: dict[str, str] | None = None, restart: str = "Never",
         spot: str = "NoSpot", image: str = "busybox") -> ContainerGroup:
    spec = ContainerSpec(name="main", image=image, env=tuple((env or {}).items()))
    draft = ContainerGroup(id="", name="build", seq=0, region_id="cn-hangzhou", zone_id="cn-hangzhou-h", cpu=2,
                           memory=4, restart_policy=restart, tags=(), containers=(spec,), init_containers=(),
                           volumes=(), created=START, intranet_ip="", spot=Spot(strategy=spot))
    group, _ = GroupStore(clock, runtime).create(draft, None)
    return group


def io() -> StreamIO:
    return StreamIO(stdin=None, stdout=None, stderr=None, tty=False, resizes=ResizeQueue())


async def test_log_is_the_sim_log_env_written_when_the_run_starts(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_LOG": "one\ntwo"})
    await clock.advance(10)
    text = await runtime.logs(group, "main", LogOptions(timestamps=True))
    assert text == b"2026-01-01T00:00:03Z one\n2026-01-01T00:00:03Z two\n"


async def test_log_options_tail_and_limit_apply(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_LOG": "a\nb\nc"})
    await clock.advance(3)
    assert await runtime.logs(group, "main", LogOptions(tail_lines=1)) == b"c\n"
    assert await runtime.logs(group, "main", LogOptions(limit_bytes=3)) == b"a\nb"


async def test_since_time_after_the_run_started_drops_its_lines(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_LOG": "a"})
    await clock.advance(5)
    assert await runtime.logs(group, "main", LogOptions(since_time=clock.now())) == b""


async def test_previous_log_is_the_run_before_a_restart(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_LOG": "hi", "VNODE_SIM_RUN_SECONDS": "10"}, restart="Always")
    await clock.advance(3 + 15)
    previous = await runtime.logs(group, "main", LogOptions(previous=True, timestamps=True))
    current = await runtime.logs(group, "main", LogOptions(timestamps=True))
    assert (previous, current) == (b"2026-01-01T00:00:03Z hi\n", b"2026-01-01T00:00:13Z hi\n")


async def test_logs_of_a_waiting_container_are_not_found(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_LOG": "hi"})
    with pytest.raises(NotFound, match="waiting to start"):
        await runtime.logs(group, "main", LogOptions())


async def test_previous_log_without_a_restart_is_not_found(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_LOG": "hi"})
    await clock.advance(3)
    with pytest.raises(NotFound, match="previous"):
        await runtime.logs(group, "main", LogOptions(previous=True))


async def test_exec_before_the_container_runs_is_refused(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock)
    with pytest.raises(ContainerNotRunning):
        await runtime.exec(group, "main", ["true"], io())


async def test_exec_after_the_container_exited_is_refused(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_RUN_SECONDS": "1"})
    await clock.advance(5)
    with pytest.raises(ContainerNotRunning):
        await runtime.exec(group, "main", ["true"], io())


async def test_restart_goes_restarting_then_running_with_one_more_restart(runtime: SimRuntime,
                                                                         clock: ManualClock) -> None:
    group = make(runtime, clock)
    await clock.advance(5)
    runtime.restart(group)
    seen = [runtime.group_status(group, clock.now())]
    await clock.advance(2)
    state = runtime.container_state(group, "main", clock.now())
    assert seen + [runtime.group_status(group, clock.now())] == ["Restarting", "Running"]
    assert (state.state, state.restart_count, state.last and state.last.state) == ("Running", 1, "Terminated")


async def test_update_runs_the_new_image_after_updating(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock)
    await clock.advance(5)
    runtime.update(replace(group, containers=(replace(group.containers[0], image="alpine"),)))
    assert runtime.group_status(group, clock.now()) == "Updating"
    await clock.advance(2)
    snap = runtime.snapshot(group, clock.now())
    assert snap.status == "Running"
    assert [e.message for e in snap.events if e.reason == "Pulled"][-1] == 'Successfully pulled image "alpine"'


async def test_spot_release_warns_then_fails_the_group(runtime: SimRuntime, clock: ManualClock) -> None:
    group = make(runtime, clock, spot="SpotAsPriceGo")
    await clock.advance(5)
    runtime.release(group, 180)
    warned = runtime.snapshot(group, clock.now())
    await clock.advance(180)
    released = runtime.snapshot(group, clock.now())
    assert warned.status == "Running"
    assert [(e.type, e.reason, e.message) for e in warned.events][-1] == (
        "Warning", "SpotToBeReleased", "Spot ECI will be released in 3 minutes")
    assert released.status == "Failed" and released.events[-1].reason == "SpotReleased"
    assert (released.containers["main"].state, released.containers["main"].reason) == ("Terminated",
                                                                                       "SpotReleased")


async def test_a_group_that_ended_before_the_release_keeps_its_outcome(runtime: SimRuntime,
                                                                       clock: ManualClock) -> None:
    group = make(runtime, clock, env={"VNODE_SIM_RUN_SECONDS": "10"}, spot="SpotAsPriceGo")
    await clock.advance(5)
    runtime.release(group, 60)
    await clock.advance(120)
    assert runtime.group_status(group, clock.now()) == "Succeeded"
