"""Running vnode's agent in-process against a test sandbox, with the mock provider at hand and short intervals."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from tests.support.running import running
from tests.support.sandbox import RunningSandbox
from vnode.agent import VnodeAgent, build_provider, cost_ledger
from vnode.clock import SystemClock
from vnode.config import VnodeSettings, load_settings
from vnode.kube.client import KubeClient
from vnode.providers.mock import MockProvider

FAST_NODE = {"internal_ip": "127.0.0.1", "ping_interval_seconds": 0.1, "ping_timeout_seconds": 1.0,
             "lease_renew_seconds": 0.2, "status_update_seconds": 1.0}
FAST_PODS = {"retry_base_seconds": 0.05, "retry_max_seconds": 0.5}


def agent_settings(sandbox: RunningSandbox, **sections: dict[str, Any]) -> VnodeSettings:
    overrides: dict[str, Any] = {
        "kube": {"kubeconfig": sandbox.kubeconfig, "qps": 0},
        "node": {**FAST_NODE, **sections.pop("node", {})},
        "pods": {**FAST_PODS, **sections.pop("pods", {})},
        # A free loopback port, and the sandbox CA for client certificates, as `vnode sandbox` sets it up.
        "kubelet": {"port": 0, "address": "127.0.0.1", "client_ca_file": sandbox.state_dir / "pki" / "ca.crt",
                    **sections.pop("kubelet", {})},
        # The cost ledger beside the sandbox's state, never in the working directory.
        "cost": {"db_path": sandbox.state_dir / "cost" / "ledger.sqlite3", **sections.pop("cost", {})},
        **sections,
    }
    return load_settings(overrides=overrides)


@contextlib.asynccontextmanager
async def running_agent(sandbox: RunningSandbox, *, mock_provider: MockProvider | None = None,
                        **sections: dict[str, Any]) -> AsyncIterator[VnodeAgent]:
    """Start a VnodeAgent with the provider its settings name (default mock); a `mock_provider` passed in outlives
    the agent (to test restarts). The cost ledger (cost.db_path, by default in the sandbox's state dir) is open
    while the agent runs, as `vnode run` has it."""
    settings = agent_settings(sandbox, **sections)
    clock = SystemClock()
    provider = mock_provider or build_provider(settings, clock)
    async with await KubeClient.connect(sandbox.kubeconfig, qps=0, clock=clock) as client, \
            cost_ledger(settings.cost) as ledger:
        agent = VnodeAgent(settings, client=client, provider=provider, clock=clock, ledger=ledger)
        async with running(agent.run(), agent.ready, name="test vnode agent"):
            yield agent
