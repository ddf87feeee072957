"""The composition root: builds every part of a running vnode from settings, owns their tasks, starts and stops them.

Start order: event recorder, provider, pod controller (until its informer synced and start-up reconciliation is
done), kubelet API (until it listens: its port goes in the Node), node agent (registers the Node), then Ready. Stop
order is the reverse. The provider is chosen here and nowhere else; controllers only see `providers.base`, through
a wrapper that meters every call.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from vnode.clock import Clock
from vnode.config import DockerProviderSettings, MockProviderSettings, VnodeSettings
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


class VnodeAgent:
    def __init__(self, settings: VnodeSettings, *, client: KubeClient, provider: Provider, clock: Clock) -> None:
        self.settings = settings
        self.client = client
        self.provider = provider
        self.clock = clock
        node = settings.node
        self.host_ip = internal_ip(settings)
        self.events = EventRecorder(client, component="vnode", host=node.name, clock=clock)
        self.health = BackendHealth()
        self.metrics = VnodeMetrics()
        metered = MeteredProvider(provider, observe=self.metrics.observe_provider_call, clock=clock)
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
                                     gate=gate, metrics=self.metrics, ssl_context=tls, clock=clock)
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled; a part that stops unexpectedly stops the whole agent with its error."""
        tasks = TaskSupervisor("vnode")
        try:
            tasks.spawn(self.events.run(), name="event recorder")
            tasks.spawn(self.provider.run(self.pods.notify), name="provider")
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
                                        clock=clock) as client:
        agent = VnodeAgent(settings, client=client, provider=build_provider(settings, clock), clock=clock)
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
