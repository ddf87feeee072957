"""Pods through the mock provider: create, run, status, delete — as a kubelet would drive them."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.support.agent import running_agent
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually


def pod(name: str = "build-1", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "nodeSelector": {"type": "virtual-kubelet"},
        "tolerations": [{"key": "virtual-kubelet.io/provider", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "main", "image": "busybox:1.36"}], **spec}}


async def phase_of(core: client.CoreV1Api, name: str = "build-1") -> str:
    return str((await core.read_namespaced_pod(name, "default")).status.phase)


async def test_pod_runs_and_becomes_ready(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """A scheduled pod becomes Running with Ready=True and running containers."""
    async with running_agent(sandbox):
        await core.create_namespaced_pod("default", pod())

        async def running() -> Any:
            current = await core.read_namespaced_pod("build-1", "default")
            return current if current.status.phase == "Running" else None

        current = await eventually(running, what="pod Running")
        assert current.spec.node_name == "vnode"
        conditions = {c.type: c.status for c in current.status.conditions}
        assert conditions == {"PodScheduled": "True", "Initialized": "True", "ContainersReady": "True",
                              "Ready": "True"}
        assert current.status.container_statuses[0].state.running is not None
        assert current.status.pod_ip


async def test_graceful_delete_removes_the_pod(sandbox: RunningSandbox, core: client.CoreV1Api) -> None:
    """`kubectl delete`-style deletion stops the backend pod and finishes with the final grace-0 delete."""
    async with running_agent(sandbox) as agent:
        await core.create_namespaced_pod("default", pod())
        await eventually(lambda: _is(core, "Running"), what="Running")
        await core.delete_namespaced_pod("build-1", "default")

        async def gone() -> bool:
            try:
                await core.read_namespaced_pod("build-1", "default")
            except ApiException as exc:
                return exc.status == 404
            return False

        await eventually(gone, what="pod removed")
        assert ("delete_pod", "default/build-1") in agent.provider.calls  # type: ignore[attr-defined]


async def _is(core: client.CoreV1Api, phase: str, name: str = "build-1") -> bool:
    return await phase_of(core, name) == phase
