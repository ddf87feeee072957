"""A ledger file, a ManualClock, and a recorder around a backend that reports exactly the states a test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from vnode.clock import ManualClock
from vnode.config import CostSettings
from vnode.cost.ledger import CostLedger
from vnode.cost.metrics import CostMetrics
from vnode.cost.recorder import CostRecordingProvider
from vnode.errors import NotSupported
from vnode.providers.base import (
    NodeDescription,
    NodeResources,
    PodRef,
    PodStatusUpdate,
    ResolvedPod,
    StatusCallback,
)
from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot

START = datetime(2024, 1, 1, tzinfo=UTC)  # before the test host's "now", so reports never clip it
ECI_2C4G = {"k8s.aliyun.com/eci-instance-id": "eci-1", "k8s.aliyun.com/eci-instance-cpu": "2.0",
            "k8s.aliyun.com/eci-instance-memory": "4.0", "k8s.aliyun.com/eci-instance-zone": "cn-hangzhou-h",
            "k8s.aliyun.com/eci-instance-spec": "2.0-4.0Gi", "k8s.aliyun.com/eci-spot-strategy": "NoSpot"}
PRICE_2C4G = "0.00012252"  # CNY per second: 2 × 0.000049 + 4 × 0.00000613


class ScriptedBackend:
    """A backend whose status updates are whatever the test emits; it keeps the pods it was asked to run."""

    def __init__(self) -> None:
        self.notify: StatusCallback | None = None
        self.running = asyncio.Event()
        self.pods: dict[str, PodRef] = {}
        self.delivered: list[PodStatusUpdate] = []

    def describe(self) -> NodeDescription:
        return NodeDescription(provider="eci", container_runtime_version="scripted://0")

    def capacity(self) -> NodeResources:
        return NodeResources(cpu="10", memory="10Gi", pods="10")

    async def run(self, notify: StatusCallback) -> None:
        self.notify = notify
        self.running.set()
        await asyncio.Event().wait()

    async def create_pod(self, pod: ResolvedPod) -> None:
        self.pods[pod.ref.uid] = pod.ref

    async def update_pod(self, pod: ResolvedPod) -> None:
        raise NotSupported("scripted")

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        self.pods.pop(ref.uid, None)

    async def list_pods(self) -> list[PodStatusUpdate]:
        return [PodStatusUpdate(ref=ref, phase="Running", backend_state="Running") for ref in self.pods.values()]

    async def ping(self) -> None:
        return None

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        raise NotSupported("scripted")

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        raise NotSupported("scripted")

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        raise NotSupported("scripted")

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        raise NotSupported("scripted")

    async def stats(self) -> UsageSnapshot:
        raise NotSupported("scripted")

    def emit(self, ref: PodRef, phase: str, backend_state: str = "",
             annotations: Mapping[str, str] | None = None) -> PodStatusUpdate:
        assert self.notify is not None
        self.notify(PodStatusUpdate(ref=ref, phase=phase, backend_state=backend_state,  # type: ignore[arg-type]
                                    annotations=dict(annotations or {})))
        return self.delivered[-1]


@dataclass
class World:
    path: Path
    clock: ManualClock
    backend: ScriptedBackend
    ledger: CostLedger
    recorder: CostRecordingProvider
    registry: CollectorRegistry
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.recorder.run(self.backend.delivered.append), name="recorder")
        await self.backend.running.wait()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        await self.ledger.aclose()


async def make_world(path: Path, clock: ManualClock, settings: CostSettings | None = None, *,
                     provider_name: str = "eci") -> World:
    backend = ScriptedBackend()
    ledger = await CostLedger.open(path)
    registry = CollectorRegistry()
    recorder = CostRecordingProvider(backend, ledger, clock=clock, provider_name=provider_name, settings=settings,
                                     metrics=CostMetrics(registry))
    world = World(path, clock, backend, ledger, recorder, registry)
    await world.start()
    return world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    running = await make_world(tmp_path / "cost.sqlite3", ManualClock(START))
    try:
        yield running
    finally:
        await running.stop()


def jenkins_pod(job: str, build: int, uid: str, *, namespace: str = "ci",
                containers: Sequence[dict[str, Any]] = ({"name": "jnlp"},)) -> ResolvedPod:
    """An agent pod as the kubernetes-plugin's podTemplate step makes it."""
    name = f"{job.replace('/', '-')}-{build}-abcde-fghjk"
    pod = {"metadata": {"name": name, "namespace": namespace, "uid": uid,
                        "labels": {"jenkins": "slave", "jenkins/label": f"{job.replace('/', '_')}_{build}-abcde"},
                        "annotations": {"runUrl": "".join(f"job/{p}/" for p in job.split("/")) + f"{build}/",
                                        "buildUrl": f"http://jenkins.ci:8080/job/{job}/{build}/"}},
           "spec": {"nodeName": "vnode-test", "restartPolicy": "Never", "containers": list(containers)}}
    return ResolvedPod(PodRef(namespace, name, uid), pod)
