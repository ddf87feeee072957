"""The recorder between a backend and the ledger: billed intervals by ECI state, the vnode.io/cost annotation,
deletes, restarts and ledger failures. Assertions read the SQLite ledger and what reached the pod controller."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from tests.integration.cost.conftest import ECI_2C4G, PRICE_2C4G, START, World, jenkins_pod, make_world
from vnode.clock import ManualClock
from vnode.config import CostSettings
from vnode.cost.ledger_rows import micros


def _at(seconds: float) -> int:
    return micros(START) + int(seconds * 1_000_000)


async def test_scheduling_is_free_pending_and_running_are_billed_to_the_second(world: World) -> None:
    pod = jenkins_pod("team/app", 3, "u-1")
    await world.recorder.create_pod(pod)
    world.backend.emit(pod.ref, "Pending", "Scheduling")
    await world.clock.advance(5)
    world.backend.emit(pod.ref, "Pending", "Pending", ECI_2C4G)
    await world.clock.advance(20)
    world.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await world.clock.advance(41)
    final = world.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
    await world.ledger.flush()
    row = await world.ledger.pod("u-1")
    assert row is not None
    assert [(i["state"], i["billed"], i["start_us"], i["end_us"]) for i in row["intervals"]] == [
        ("Scheduling", 0, _at(0), _at(5)), ("Pending", 1, _at(5), _at(25)), ("Running", 1, _at(25), _at(66))]
    assert Decimal(row["cost"]) == 61 * Decimal(PRICE_2C4G)
    assert (row["job"], row["build"], row["instance_id"], row["phase"]) == ("team/app", "3", "eci-1", "Succeeded")
    assert final.annotations["vnode.io/cost"] == "0.007474 CNY"


async def test_restarting_is_billed(world: World) -> None:
    pod = jenkins_pod("app", 1, "u-r")
    await world.recorder.create_pod(pod)
    for state, seconds in (("Running", 10), ("Restarting", 7), ("Running", 3)):
        world.backend.emit(pod.ref, "Running" if state == "Running" else "Pending", state, ECI_2C4G)
        await world.clock.advance(seconds)
    world.backend.emit(pod.ref, "Failed", "Failed", ECI_2C4G)
    await world.ledger.flush()
    row = await world.ledger.pod("u-r")
    assert row is not None and Decimal(row["cost"]) == 20 * Decimal(PRICE_2C4G)


async def test_expired_spot_instance_stops_billing(world: World) -> None:
    pod = jenkins_pod("app", 2, "u-e")
    await world.recorder.create_pod(pod)
    world.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await world.clock.advance(30)
    final = world.backend.emit(pod.ref, "Failed", "Expired", ECI_2C4G)
    await world.clock.advance(30)
    world.backend.emit(pod.ref, "Failed", "Expired", ECI_2C4G)
    await world.ledger.flush()
    row = await world.ledger.pod("u-e")
    assert row is not None and Decimal(row["cost"]) == 30 * Decimal(PRICE_2C4G)
    assert final.annotations["vnode.io/cost"] == "0.003676 CNY"


async def test_pod_deleted_right_after_it_ends_keeps_its_cost(world: World) -> None:
    """Jenkins deletes the agent pod seconds after the build: the cost stays in the ledger, and a late terminal
    update still carries the annotation."""
    pod = jenkins_pod("app", 4, "u-d")
    await world.recorder.create_pod(pod)
    world.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await world.clock.advance(12)
    world.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
    await world.clock.advance(2)
    await world.recorder.delete_pod(pod.ref, 30)
    late = world.backend.emit(pod.ref, "Succeeded", "", {})
    await world.ledger.flush()
    row = await world.ledger.pod("u-d")
    assert row is not None
    assert (Decimal(row["cost"]), row["ended_us"]) == (12 * Decimal(PRICE_2C4G), _at(12))
    assert late.annotations["vnode.io/cost"] == "0.001470 CNY"


async def test_delete_while_running_ends_billing_when_the_backend_accepts_it(world: World) -> None:
    pod = jenkins_pod("app", 5, "u-x")
    await world.recorder.create_pod(pod)
    world.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await world.clock.advance(9)
    await world.recorder.delete_pod(pod.ref, 30)
    await world.clock.advance(100)
    await world.ledger.flush()
    row = await world.ledger.pod("u-x")
    assert row is not None and (row["ended_us"], Decimal(row["cost"])) == (_at(9), 9 * Decimal(PRICE_2C4G))


async def test_metrics_count_billed_seconds_and_cost_per_namespace_and_job(world: World) -> None:
    pod = jenkins_pod("team/app", 6, "u-m")
    await world.recorder.create_pod(pod)
    world.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await world.clock.advance(10)
    world.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
    labels = {"namespace": "ci", "job": "team/app"}
    assert world.registry.get_sample_value("vnode_billed_seconds_total", labels) == 10.0
    assert world.registry.get_sample_value("vnode_cost_total", {**labels, "currency": "CNY"}) == float(
        10 * Decimal(PRICE_2C4G))


async def test_restart_continues_open_intervals(tmp_path: Path) -> None:
    """vnode stops while a pod runs; after the restart the open interval goes on, and the downtime is billed."""
    path, clock = tmp_path / "cost.sqlite3", ManualClock(START)
    first = await make_world(path, clock)
    pod = jenkins_pod("app", 7, "u-s")
    await first.recorder.create_pod(pod)
    first.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await clock.advance(40)
    await first.stop()
    await clock.advance(20)
    second = await make_world(path, clock)
    try:
        await second.recorder.create_pod(pod)
        second.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
        await clock.advance(15)
        final = second.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
        await second.ledger.flush()
        row = await second.ledger.pod("u-s")
    finally:
        await second.stop()
    assert row is not None and Decimal(row["cost"]) == 75 * Decimal(PRICE_2C4G)
    assert final.annotations["vnode.io/cost"] == "0.009189 CNY"


async def test_pods_gone_from_the_backend_after_a_restart_end_then(tmp_path: Path) -> None:
    path, clock = tmp_path / "cost.sqlite3", ManualClock(START)
    first = await make_world(path, clock)
    gone, kept = jenkins_pod("app", 8, "u-gone"), jenkins_pod("app", 9, "u-kept")
    for pod in (gone, kept):
        await first.recorder.create_pod(pod)
        first.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await clock.advance(10)
    await first.stop()
    await clock.advance(5)
    second = await make_world(path, clock)
    try:
        await second.backend.create_pod(kept)  # the backend still runs one of them
        await second.recorder.list_pods()
        await second.ledger.flush()
        rows = {uid: await second.ledger.pod(uid) for uid in ("u-gone", "u-kept")}
    finally:
        await second.stop()
    assert rows["u-gone"] is not None and rows["u-gone"]["ended_us"] == _at(15)
    assert rows["u-kept"] is not None and rows["u-kept"]["ended_us"] is None


async def test_a_closed_ledger_does_not_break_the_pod_path(world: World) -> None:
    pod = jenkins_pod("app", 10, "u-f")
    await world.ledger.aclose()
    await world.recorder.create_pod(pod)
    update = world.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    assert (update.phase, set(world.backend.pods)) == ("Running", {"u-f"})


async def test_docker_and_mock_bill_the_running_phase_as_an_estimate(tmp_path: Path) -> None:
    """No backend state: the Running phase is billed, at the notional rate, flagged as an estimate."""
    world = await make_world(tmp_path / "cost.sqlite3", ManualClock(START), provider_name="docker")
    try:
        pod = jenkins_pod("app", 11, "u-p", containers=[
            {"name": "jnlp", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}])
        await world.recorder.create_pod(pod)
        world.backend.emit(pod.ref, "Pending")
        await world.clock.advance(3)
        world.backend.emit(pod.ref, "Running")
        await world.clock.advance(100)
        final = world.backend.emit(pod.ref, "Succeeded")
    finally:
        await world.stop()
    expected = 100 * (Decimal("0.5") * Decimal("0.000049") + Decimal("0.00000613"))
    assert final.annotations["vnode.io/cost"] == f"{expected.quantize(Decimal('0.000001'))} CNY (estimate)"


async def test_a_late_update_for_a_pod_ended_before_a_restart_leaves_its_record(tmp_path: Path) -> None:
    """ECI lists finished groups for an hour: their terminal status after a restart must not rewrite the ledger."""
    path, clock = tmp_path / "cost.sqlite3", ManualClock(START)
    first = await make_world(path, clock)
    pod = jenkins_pod("team/app", 12, "u-l")
    await first.recorder.create_pod(pod)
    first.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
    await clock.advance(10)
    first.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
    await first.ledger.flush()
    before = await first.ledger.pod("u-l")
    await first.stop()
    await clock.advance(60)
    second = await make_world(path, clock)
    try:
        second.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
        second.backend.emit(pod.ref, "Running", "Running", ECI_2C4G)
        await second.recorder.delete_pod(pod.ref, 30)
        await second.ledger.flush()
        after = await second.ledger.pod("u-l")
    finally:
        await second.stop()
    assert before is not None and before["job"] == "team/app"
    assert after == before


async def test_new_prices_apply_to_pods_priced_after_them(world: World) -> None:
    old, new = jenkins_pod("app", 13, "u-old"), jenkins_pod("app", 14, "u-new")
    await world.recorder.create_pod(old)
    world.backend.emit(old.ref, "Running", "Running", ECI_2C4G)
    prices = CostSettings().prices
    world.recorder.use_prices(prices.model_copy(update={"default": prices.default.model_copy(update={
        "vcpu_second": 0.0001, "gib_second": 0.00001})}))
    await world.recorder.create_pod(new)
    world.backend.emit(new.ref, "Running", "Running", ECI_2C4G)
    await world.clock.advance(10)
    costs = {pod.ref.uid: world.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
             .annotations["vnode.io/cost"] for pod in (old, new)}
    assert costs == {"u-old": "0.001225 CNY", "u-new": "0.002400 CNY"}


async def test_ecis_pending_after_the_phase_pending_is_billed(world: World) -> None:
    """The eci provider's first update is the phase Pending, before ECI said anything; when the first poll finds
    the group already past Scheduling, ECI's Pending (billed) follows under the same name and billing starts."""
    pod = jenkins_pod("app", 5, "u-p")
    await world.recorder.create_pod(pod)
    world.backend.emit(pod.ref, "Pending")
    await world.clock.advance(2)
    world.backend.emit(pod.ref, "Pending", "Pending", ECI_2C4G)
    await world.clock.advance(10)
    world.backend.emit(pod.ref, "Succeeded", "Succeeded", ECI_2C4G)
    await world.ledger.flush()
    row = await world.ledger.pod("u-p")
    assert row is not None
    assert [(i["state"], i["billed"], i["start_us"], i["end_us"]) for i in row["intervals"]] == [
        ("Pending", 0, _at(0), _at(2)), ("Pending", 1, _at(2), _at(12))]
    assert Decimal(row["cost"]) == 10 * Decimal(PRICE_2C4G)
