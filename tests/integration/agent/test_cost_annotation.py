"""The final `vnode.io/cost` annotation reaches the pod however it ends, also when vnode decided the terminal status
itself before the backend's last word (activeDeadlineSeconds): the ledger's cost arrives with the backend's terminal
update, after the pod is already Failed. Mock provider, the ledger in the sandbox's state dir."""

from __future__ import annotations

import sqlite3
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.support.agent import running_agent
from tests.support.sandbox import RunningSandbox
from tests.support.wait import eventually
from vnode.kube import paths

COST = "vnode.io/cost"


def jenkins_pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "app-9-agent", "namespace": "default", "annotations": {"runUrl": "job/app/9/"}},
            "spec": {"nodeName": "vnode", "restartPolicy": "Never", "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "jnlp", "image": "busybox"}], **spec}}


async def test_deadline_exceeded_pod_gets_its_final_cost(sandbox: RunningSandbox) -> None:
    async with running_agent(sandbox) as agent:
        created = await agent.client.create(paths.pods_path("default"), jenkins_pod(activeDeadlineSeconds=1))

        async def failed_with_cost() -> dict[str, Any] | None:
            pod = await agent.client.get(paths.pod_path("default", "app-9-agent"))
            done = pod.get("status", {}).get("reason") == "DeadlineExceeded"
            return pod if done and COST in (pod["metadata"].get("annotations") or {}) else None

        pod = await eventually(failed_with_cost, timeout_seconds=20, what="DeadlineExceeded with a final cost")
    assert pod["status"]["phase"] == "Failed"
    with sqlite3.connect(f"file:{sandbox.state_dir / 'cost' / 'ledger.sqlite3'}?mode=ro", uri=True) as db:
        [(cost,)] = db.execute("SELECT cost FROM pods WHERE uid = ?", (created["metadata"]["uid"],)).fetchall()
    # Billed while Running, up to the delete vnode sent at the deadline: about a second.
    assert Decimal(cost) > 0
    rounded = Decimal(cost).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    assert pod["metadata"]["annotations"][COST] == f"{rounded} CNY (estimate)"
