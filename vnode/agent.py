"""The composition root: builds every part of a running vnode from settings, owns their tasks, starts and stops them.

Start order: event recorder, ECI's prices (eci provider with a ledger), provider, pod controller (until its
informer synced and start-up reconciliation is done), kubelet API (until it listens: its port goes in the Node),
node agent (registers the Node), then Ready. Stop order is the reverse. The provider is chosen here and nowhere
else; controllers only see `providers.base`, through a wrapper that meters every call.

Cost: with a ledger (`cost_ledger`, when cost.enabled), the provider is wrapped in the cost recorder inside the
metering wrapper, the kubelet API serves `/cost/report` from that ledger, and an eci provider's prices are asked of
ECI (DescribeContainerGroupPrice) before any pod is priced, then daily; if ECI does not answer, cost.prices stands.
The ledger's opener closes it after the agent, and so its provider, has stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from vnode.clock import Clock
from vnode.config import (
    CostSettings,
    DockerProviderSettings,
    EciProviderSettings,
    MockProviderSettings,
    VnodeSettings,
)
from vnode.cost.ledger import CostLedger
from vnode.cost.metrics import CostMetrics
from vnode.cost.query import ReportQuery
from vnode.cost.recorder import CostRecordingProvider
from vnode.cost.reports import render_report
from vnode.kube.client import KubeClient
from vnode.kube.events import EventRecorder
from vnode.kubelet.access import AccessGate
from vnode.kubelet.auth import KubeletAuthenticator, KubeletAuthorizer
from vnode.kubelet.certs import serving_ssl_context
from vnode.kubelet.metrics import VnodeMetrics
from vnode.kubelet.server import KubeletServer
from vnode.node.agent import NodeAgent
from vnode.pods.controller import PodController
from vnode.providers.base import Provider
from vnode.providers.metered import MeteredProvider
from vnode.providers.mock import MockProvider
from vnode.util.health import BackendHealth
from vnode.util.tasks import TaskSupervisor, wait_ready

if TYPE_CHECKING:
    from vnode.cost.eci_prices import EciPriceRefresh

log = logging.getLogger(__name__)
# Declared in the Node's status.declaredFeatures: kube-apiserver 1.36+ then passes WebSocket exec, attach and
# port-forward straight to vnode (every WebSocket variant is served here) instead of translating them to SPDY.
WEBSOCKETS_FEATURE = "ExtendWebSocketsToKubelet"


def build_provider(settings: VnodeSettings, clock: Clock) -> Provider:
    provider = settings.provider
    if isinstance(provider, MockProviderSettings):
        return MockProvider(provider, clock)
    # Imported only when chosen: a backend's client library costs memory in every vnode that does not use it.
    if isinstance(provider, DockerProviderSettings):
        from vnode.providers.docker.provider import DockerProvider

        return DockerProvider(provider, clock, node_name=settings.node.name)
    from vnode.providers.eci.provider import EciProvider

    return EciProvider(provider, clock, node_name=settings.node.name)


def internal_ip(settings: VnodeSettings) -> str:
    """The node's InternalIP: configured, else the pod IP from the downward API, else this host's address."""
    if settings.node.internal_ip:
        return settings.node.internal_ip
    if settings.pod_ip:
        return settings.pod_ip
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


@contextlib.asynccontextmanager
async def cost_ledger(settings: CostSettings) -> AsyncIterator[CostLedger | None]:
    """The cost ledger for the length of the block when cost.enabled (else None); closed at the end, its queued
    writes done. Wrap the agent's whole run in it, so the ledger closes only after the provider has stopped."""
    if not settings.enabled:
        yield None
        return
    ledger = await CostLedger.open(settings.db_path)
    try:
        yield ledger
    finally:
        await ledger.aclose()


def _price_refresh(settings: VnodeSettings, recorder: CostRecordingProvider, clock: Clock) -> EciPriceRefresh | None:
    provider = settings.provider
    if not isinstance(provider, EciProviderSettings):
        return None  # Docker and mock pods are priced at the notional rate: nothing to ask
    from vnode.cost.eci_prices import EciPriceRefresh  # loads the Aliyun SDK, as the eci provider does

    if not EciPriceRefresh.applies(provider, settings.cost):
        return None
    return EciPriceRefresh(provider, settings.cost, clock, recorder.use_prices)


class VnodeAgent:
    def __init__(self, settings: VnodeSettings, *, client: KubeClient, provider: Provider, clock: Clock,
                 ledger: CostLedger | None = None) -> None:
        self.settings = settings
        self.client = client
        self.provider = provider  # the backend itself; `backend` is what the agent runs (with cost recording)
        self.clock = clock
        node = settings.node
        self.host_ip = internal_ip(settings)
        self.events = EventRecorder(client, component="vnode", host=node.name, clock=clock)
        self.health = BackendHealth()
        self.metrics = VnodeMetrics()
        self.ledger = ledger
        self.recorder: CostRecordingProvider | None = None
        self.prices: EciPriceRefresh | None = None
        self.backend: Provider = provider
        if ledger is not None:
            name = provider.describe().provider
            region = settings.provider.region_id if isinstance(settings.provider, EciProviderSettings) else ""
            self.recorder = CostRecordingProvider(provider, ledger, clock=clock, provider_name=name,
                                                  settings=settings.cost, region_id=region,
                                                  metrics=CostMetrics(self.metrics.registry))
            self.backend = self.recorder
            self.prices = _price_refresh(settings, self.recorder, clock)
        metered = MeteredProvider(self.backend, observe=self.metrics.observe_provider_call, clock=clock)
        self.pods = PodController(client, metered, settings.pods, node_name=node.name, host_ip=self.host_ip,
                                  clock=clock, events=self.events, health=self.health)
        self.metrics.connect(
            pods=self.pods.informer.list,
            queues={"from_kubernetes": lambda: self.pods.from_kubernetes.depth,
                    "from_provider": lambda: self.pods.from_provider.depth},
            throttling=lambda: (client.limiter.waited_seconds_total, client.limiter.throttled_total))
        kubelet = settings.kubelet
        features = (WEBSOCKETS_FEATURE,) if kubelet.declare_websockets else ()
        self.node = NodeAgent(client, metered, node, internal_ip=self.host_ip, kubelet_port=kubelet.port,
                              clock=clock, events=self.events, health=self.health, declared_features=features)
        gate = AccessGate(KubeletAuthenticator(kubelet, client, clock),
                          KubeletAuthorizer(kubelet, client, node_name=node.name, clock=clock))
        tls = serving_ssl_context(kubelet, node_name=node.name, addresses=[self.host_ip, node.name], clock=clock)
        self.kubelet = KubeletServer(kubelet, node_name=node.name, provider=metered, pods=self.pods.informer,
                                     gate=gate, metrics=self.metrics, ssl_context=tls, clock=clock,
                                     cost_reporter=self._cost_report if ledger is not None else None)
        self.ready = asyncio.Event()

    async def _cost_report(self, params: Mapping[str, str]) -> tuple[str, bytes]:
        """`/cost/report` on the kubelet API: the report `vnode cost report` would print, from this node's ledger."""
        assert self.ledger is not None  # the route is given this only with a ledger
        return await render_report(self.ledger, ReportQuery.from_params(params), clock=self.clock)

    async def run(self) -> None:
        """Run until cancelled; a part that stops unexpectedly stops the whole agent with its error."""
        tasks = TaskSupervisor("vnode")
        try:
            tasks.spawn(self.events.run(), name="event recorder")
            if self.prices is not None:
                # Before the provider: pods it lists or creates are priced with what ECI quotes.
                tasks.spawn(self.prices.run(), name="ECI price refresh")
                await wait_ready(self.prices.ready, tasks, "ECI's prices")
            tasks.spawn(self.backend.run(self.pods.notify), name="provider")
            tasks.spawn(self.pods.run(), name="pod controller")
            await wait_ready(self.pods.ready, tasks, "the pod controller to sync")
            tasks.spawn(self.kubelet.run(), name="kubelet API")
            await wait_ready(self.kubelet.ready, tasks, "the kubelet API to listen")
            self.node.kubelet_port = self.kubelet.port
            tasks.spawn(self.node.run(), name="node agent")
            await wait_ready(self.node.ready, tasks, "the node to register")
            self.node.set_serving()
            await wait_ready(self.node.posted_ready, tasks, "the node to post Ready")
            self.ready.set()
            log.info("vnode ready: node %s (%s provider)", self.settings.node.name,
                     self.provider.describe().provider)
            await tasks.failed.wait()
            raise RuntimeError("a vnode component stopped") from tasks.failure
        finally:
            self.ready.clear()
            await tasks.stop()


async def run_agent(settings: VnodeSettings, clock: Clock, *, stop: asyncio.Event,
                    started: asyncio.Event | None = None) -> None:
    """Connect to the cluster and run vnode until `stop` is set."""
    kube = settings.kube
    async with await KubeClient.connect(kube.kubeconfig, context=kube.context, qps=kube.qps, burst=kube.burst,
                                        clock=clock) as client, cost_ledger(settings.cost) as ledger:
        agent = VnodeAgent(settings, client=client, provider=build_provider(settings, clock), clock=clock,
                           ledger=ledger)
        running = asyncio.create_task(agent.run(), name="vnode agent")
        stopping = asyncio.create_task(stop.wait(), name="vnode stop wait")
        ready = asyncio.create_task(agent.ready.wait(), name="vnode ready wait")
        try:
            done, _ = await asyncio.wait({running, stopping, ready}, return_when=asyncio.FIRST_COMPLETED)
            if ready in done and started is not None:
                started.set()
            if running not in done and stopping not in done:
                await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                running.result()
        finally:
            for task in (running, stopping, ready):
                task.cancel()
            await asyncio.gather(running, stopping, ready, return_exceptions=True)
