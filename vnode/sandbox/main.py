"""`vnode sandbox`: the in-memory API server in the foreground, with a kubeconfig for kubectl.

Creates the state directory (CA, tokens, policy, kubeconfig), serves until SIGINT or SIGTERM, then stops everything
it started within the shutdown timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from vnode.agent import run_agent
from vnode.clock import SystemClock
from vnode.config import CostSettings, EciProviderSettings, VnodeSettings
from vnode.sandbox import auth
from vnode.sandbox.eci_backend import sandbox_eci
from vnode.sandbox.pki import SandboxPKI
from vnode.sandbox.server import SandboxApiServer
from vnode.util.gc_tuning import freeze_long_lived_objects

SHUTDOWN_TIMEOUT_SECONDS = 8.0


def node_settings(settings: VnodeSettings, kubeconfig: Path) -> VnodeSettings:
    """The virtual node's settings inside the sandbox: this API server, reached on loopback, and a kubelet API that
    accepts client certificates from the sandbox CA (the API server's kubelet-client certificate among them)."""
    kube = settings.kube.model_copy(update={"kubeconfig": kubeconfig})
    node = settings.node.model_copy(update={"internal_ip": settings.node.internal_ip or "127.0.0.1"})
    ca_file = settings.kubelet.client_ca_file or (settings.sandbox.state_dir.resolve() / "pki" / "ca.crt")
    # The kubelet API listens only where the sandbox API server reaches it: the node's InternalIP.
    kubelet = settings.kubelet.model_copy(update={"client_ca_file": ca_file, "address": node.internal_ip})
    # The cost ledger lives with the sandbox's other state unless cost.db_path was set.
    cost = settings.cost
    if cost.db_path == CostSettings.model_fields["db_path"].default:
        cost = cost.model_copy(update={"db_path": sandbox_ledger_path(settings)})
    return settings.model_copy(update={"kube": kube, "node": node, "kubelet": kubelet, "cost": cost})


def sandbox_ledger_path(settings: VnodeSettings) -> Path:
    """Where `vnode sandbox` keeps its cost ledger by default: `<state dir>/cost/ledger.sqlite3`."""
    return settings.sandbox.state_dir.resolve() / "cost" / "ledger.sqlite3"


def build_server(settings: VnodeSettings) -> SandboxApiServer:
    state_dir = settings.sandbox.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    pki = SandboxPKI.load_or_create(state_dir)
    tokens = auth.StaticTokens.load(auth.ensure_token_file(state_dir))
    authorizer = auth.Authorizer.from_file(auth.ensure_policy_file(state_dir))
    return SandboxApiServer(settings.sandbox, clock=SystemClock(), pki=pki, tokens=tokens, authorizer=authorizer)


async def run_sandbox(settings: VnodeSettings, *, start_node: bool = True) -> int:
    server = build_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    serving = asyncio.create_task(server.run(), name="sandbox api server")
    # Process-wide collector tuning belongs to the process entry point, not to the server object.
    freezing = asyncio.create_task(freeze_long_lived_objects(SystemClock()), name="sandbox gc freezer")
    stopping = asyncio.create_task(stop.wait(), name="sandbox signal wait")
    ready = asyncio.create_task(server.ready.wait(), name="sandbox ready wait")
    tasks: list[asyncio.Task[object]] = []
    backends = contextlib.AsyncExitStack()  # the ECI emulator, when the node's provider is eci
    try:
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # startup failed: raise its error
        kubeconfig = settings.sandbox.state_dir.resolve() / "kubeconfig"
        server.pki.write_kubeconfig(kubeconfig, server.url)
        agent_started = asyncio.Event()
        node_stop = asyncio.Event()
        agent: asyncio.Task[object]
        backend_note = ""
        if start_node and isinstance(settings.provider, EciProviderSettings):
            eci = await backends.enter_async_context(sandbox_eci(settings, SystemClock()))
            settings = eci.settings
            backend_note = f" eci={eci.emulator.endpoint} runtime={eci.emulator.settings.runtime}"
        if start_node:
            agent = asyncio.create_task(run_agent(node_settings(settings, kubeconfig), SystemClock(),
                                                  stop=node_stop, started=agent_started), name="sandbox virtual node")
        else:
            agent_started.set()
            agent = asyncio.create_task(node_stop.wait(), name="sandbox without a node")
        started = asyncio.create_task(agent_started.wait(), name="sandbox node ready wait")
        tasks.extend([agent, started])
        await asyncio.wait({serving, stopping, agent, started}, return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            node = settings.node.name if start_node else "none"
            print(f"vnode sandbox ready: kubeconfig={kubeconfig} node={node}{backend_note}", flush=True)
            print(f"  try: KUBECONFIG={kubeconfig} kubectl get nodes", flush=True)
            await asyncio.wait({serving, stopping, agent}, return_when=asyncio.FIRST_COMPLETED)
        node_stop.set()
        for failed in (serving, agent):
            if failed.done():
                failed.result()
                return 1
        return 0
    finally:
        # The virtual node stops first (reverse start order), then the API server it talks to.
        for task in reversed(tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), SHUTDOWN_TIMEOUT_SECONDS / 2)
        await backends.aclose()
        for task in (ready, stopping, serving, freezing):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.gather(ready, stopping, serving, freezing, return_exceptions=True),
                                   SHUTDOWN_TIMEOUT_SECONDS)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        print("vnode sandbox stopped", file=sys.stderr, flush=True)
