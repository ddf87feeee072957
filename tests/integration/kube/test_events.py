"""EventRecorder against the sandbox: Events are created, repeats aggregated, and found by involvedObject."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.kube.conftest import pod
from tests.support.kubectl import Kubectl, kubectl_binary
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.clock import SystemClock
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.kube.events import EventRecorder


@contextlib.asynccontextmanager
async def running(recorder: EventRecorder) -> AsyncIterator[None]:
    task = asyncio.create_task(recorder.run(), name="event recorder")
    try:
        await recorder.ready.wait()
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def events_about(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = await kube.list(paths.events_path(namespace), {"fieldSelector": f"involvedObject.name={name}"})
    return list(listed["items"])


def recorder_for(kube: KubeClient) -> EventRecorder:
    return EventRecorder(kube, component="vnode", host="vn-1", clock=SystemClock(), retry_initial_seconds=0.05)


async def test_an_event_is_written_with_kubelet_fields(kube: KubeClient) -> None:
    """record() results in one core/v1 Event naming the pod, its source and the reporting instance."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    recorder = recorder_for(kube)
    async with running(recorder):
        recorder.record(created, "Normal", "ProviderCreateSuccess", "Create pod in provider successfully")
        [event] = await eventually(lambda: events_about(kube, "default", "p1"), what="the Event")
    assert event["metadata"]["name"].startswith("p1.")
    assert event["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "p1", "namespace": "default",
                                       "uid": created["metadata"]["uid"],
                                       "resourceVersion": created["metadata"]["resourceVersion"]}
    assert (event["type"], event["reason"], event["count"]) == ("Normal", "ProviderCreateSuccess", 1)
    assert event["source"] == {"component": "vnode", "host": "vn-1"}
    assert (event["reportingComponent"], event["reportingInstance"]) == ("vnode", "vn-1")
    assert event["firstTimestamp"] == event["lastTimestamp"]


async def test_a_repeated_event_bumps_the_count_of_the_first(kube: KubeClient) -> None:
    """The same object, type, reason and message again within ten minutes patches count to 2, no second Event."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    recorder = recorder_for(kube)
    async with running(recorder):
        recorder.record(created, "Warning", "ProviderCreateFailed", "quota exceeded")
        recorder.record(created, "Warning", "ProviderCreateFailed", "quota exceeded")
        await eventually(lambda: _true(recorder.written_total == 2), what="both writes")
    [event] = await events_about(kube, "default", "p1")
    assert event["count"] == 2


async def test_a_different_message_is_a_separate_event(kube: KubeClient) -> None:
    """Events differing in message are not aggregated."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    recorder = recorder_for(kube)
    async with running(recorder):
        recorder.record(created, "Warning", "ProviderCreateFailed", "quota exceeded")
        recorder.record(created, "Warning", "ProviderCreateFailed", "image not found")
        await eventually(lambda: _true(recorder.written_total == 2), what="both writes")
    events = await events_about(kube, "default", "p1")
    assert sorted(e["message"] for e in events) == ["image not found", "quota exceeded"]


async def test_node_events_go_to_the_default_namespace(kube: KubeClient) -> None:
    """An Event about a cluster-scoped Node is written in namespace default."""
    node = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "vn-1", "uid": "node-uid"}}
    recorder = recorder_for(kube)
    async with running(recorder):
        recorder.record(node, "Normal", "NodeReady", "Node vn-1 status is now: NodeReady")
        [event] = await eventually(lambda: events_about(kube, "default", "vn-1"), what="the node Event")
    assert event["involvedObject"] == {"kind": "Node", "apiVersion": "v1", "name": "vn-1", "uid": "node-uid"}


async def test_an_event_the_server_refuses_is_dropped_and_the_next_is_written(kube: KubeClient) -> None:
    """A rejected write (its namespace does not exist) is dropped with a log line; the queue moves on."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    ghost = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x", "namespace": "no-such-ns", "uid": "u"}}
    recorder = recorder_for(kube)
    async with running(recorder):
        recorder.record(ghost, "Normal", "Started", "started")
        recorder.record(created, "Normal", "Started", "started")
        await eventually(lambda: _true(recorder.written_total == 1 and recorder.dropped_total == 1),
                         what="one drop and one write")
    assert len(await events_about(kube, "default", "p1")) == 1


@pytest.mark.kubectl
async def test_kubectl_finds_the_aggregated_event(kube: KubeClient, sandbox: RunningSandbox) -> None:
    """`kubectl get events --field-selector involvedObject.name=...` shows the Event with its count."""
    created = await kube.create(paths.pods_path("default"), pod("p1"))
    recorder = recorder_for(kube)
    async with running(recorder):
        for _ in range(3):
            recorder.record(created, "Warning", "ProviderCreateFailed", "quota exceeded")
        await eventually(lambda: _true(recorder.written_total == 3), what="three writes")
    kubectl = Kubectl(kubectl_binary(), sandbox.kubeconfig)
    listed = (await kubectl.run("get", "events", "-n", "default", "--field-selector", "involvedObject.name=p1",
                                "-o", "json")).json()
    assert [(e["reason"], e["count"]) for e in listed["items"]] == [("ProviderCreateFailed", 3)]


def test_record_drops_the_oldest_when_the_queue_is_full(kube: KubeClient) -> None:
    """record() never blocks: past queue_size the oldest pending event is dropped and counted."""
    recorder = EventRecorder(kube, component="vnode", host="vn-1", clock=SystemClock(), queue_size=2)
    regarding = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "default"}}
    for reason in ("One", "Two", "Three"):
        recorder.record(regarding, "Normal", reason, "m")
    assert recorder.dropped_total == 1


async def _true(value: bool) -> bool:
    return value
