"""The kubelet HTTPS API on :10250: what kube-apiserver (and metrics-server, Prometheus) call on a node.

`KubeletServer.run()` listens (TLS only) until cancelled; `ready` is set and `port` known once it accepts
connections. One front protocol per connection sends SPDY upgrades to `StreamSessions` and everything else to
aiohttp. Every request passes the `AccessGate` first. It owns the listener, aiohttp's runner and the raw-connection
tasks; it must not write to the Kubernetes API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from vnode.clock import Clock
from vnode.config import KubeletSettings
from vnode.errors import VnodeError
from vnode.kubelet import cost_route, logs, stats
from vnode.kubelet.access import AccessGate
from vnode.kubelet.metrics import VnodeMetrics
from vnode.kubelet.streaming import StreamSessions, counted, wants_spdy
from vnode.providers.base import PodRef, Provider
from vnode.util.front import FrontServer, RequestHead, write_simple_response

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PodCache(Protocol):
    """The pods bound to this node, as the pod informer holds them."""

    def get(self, key: str) -> Obj | None: ...

    def list(self) -> list[Obj]: ...


def _json(obj: Any) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), content_type="application/json")


def _peer_cert(transport: asyncio.BaseTransport | None) -> dict[str, Any] | None:
    # getpeercert() is only filled for a certificate the TLS layer verified (a client CA is configured).
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    return cert or None


class KubeletServer:
    def __init__(self, settings: KubeletSettings, *, node_name: str, provider: Provider, pods: PodCache,
                 gate: AccessGate, metrics: VnodeMetrics, ssl_context: ssl.SSLContext, clock: Clock,
                 cost_reporter: cost_route.CostReporter | None = None) -> None:
        self._settings = settings
        self._node_name = node_name
        self._provider = provider
        self._pods = pods
        self._gate = gate
        self._metrics = metrics
        self._ssl_context = ssl_context
        self._clock = clock
        self._cost_reporter = cost_reporter  # None: cost disabled, /cost/report says so
        self._started: datetime = clock.now()
        self.sessions = StreamSessions(settings, provider, pods.get, metrics)
        self.ready = asyncio.Event()
        self.port = 0
        self._front: FrontServer | None = None

    @property
    def raw_connections(self) -> int:
        """SPDY connections being served right now."""
        return self._front.raw_connections if self._front is not None else 0

    # Routes

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._access], client_max_size=1024 * 1024)
        streams = self.sessions.serve_websocket
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/pods", self._list_pods)
        app.router.add_get("/runningpods/", self._running_pods)
        app.router.add_route("*", "/stats/summary", self._stats_summary)
        app.router.add_get("/metrics/resource", self._resource_metrics)
        app.router.add_get("/metrics", self._own_metrics)
        app.router.add_get(cost_route.PATH, cost_route.cost_report_handler(self._cost_reporter))
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._container_logs)
        for prefix in ("/exec", "/attach"):
            for path in ("/{namespace}/{pod}/{container}", "/{namespace}/{pod}/{uid}/{container}"):
                app.router.add_get(prefix + path, streams)
                app.router.add_post(prefix + path, streams)
        for path in ("/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"):
            app.router.add_get(path, streams)
            app.router.add_post(path, streams)
        return app

    @web.middleware
    async def _access(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = await self._gate.check(request.method, request.path, request.headers,
                                         _peer_cert(request.transport))
        if refusal is not None:
            self._metrics.request_done(_route_name(request), refusal.status)
            return web.Response(status=refusal.status, body=refusal.body, content_type=None,
                                headers={"Content-Type": refusal.content_type})
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._metrics.request_done(_route_name(request), exc.status)
            raise
        self._metrics.request_done(_route_name(request), response.status)
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _list_pods(self, request: web.Request) -> web.Response:
        return _json({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self._pods.list()})

    async def _running_pods(self, request: web.Request) -> web.Response:
        """The runtime's view (kubecontainer.Pod.ToAPIPod): identity and containers' names and images only."""
        try:
            running = await self._provider.list_pods()
        except VnodeError as exc:
            return web.Response(status=500, text=f"failed to get running pods: {exc}")
        items = [{"metadata": {"name": u.ref.name, "namespace": u.ref.namespace, "uid": u.ref.uid},
                  "spec": {"containers": [{"name": c.name, "image": c.image} for c in u.containers]},
                  "status": {}} for u in running if u.phase not in ("Succeeded", "Failed")]
        return _json({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})

    async def _stats_summary(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "POST"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "POST"])
        only = request.query.get("only_cpu_and_memory", "") in ("1", "true", "True")
        try:
            snapshot = await self._provider.stats()
        except VnodeError as exc:
            return web.Response(status=500, text=f"failed to get stats summary: {exc}")
        return _json(stats.summary(snapshot, node_name=self._node_name, node_start_time=self._started,
                                   only_cpu_and_memory=only))

    async def _resource_metrics(self, request: web.Request) -> web.Response:
        try:
            body = stats.resource_metrics(await self._provider.stats(), error=False)
        except VnodeError as exc:
            log.warning("resource metrics: the provider's stats failed: %s", exc)
            body = stats.resource_metrics(None, error=True)
        return web.Response(body=body, headers={"Content-Type": stats.CONTENT_TYPE_LATEST})

    async def _own_metrics(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["pod"]
        container = request.match_info["container"]
        try:
            options = logs.parse_log_options(list(request.query.items()), self._clock.now())
        except logs.LogQueryError as exc:
            return web.Response(status=exc.status, text=exc.text)
        pod = self._pods.get(f"{namespace}/{name}")
        if pod is None:
            return web.Response(status=404, text=f'pod "{name}" does not exist')
        spec = pod.get("spec") or {}
        if container not in {c.get("name") for key in ("containers", "initContainers", "ephemeralContainers")
                             for c in spec.get(key) or []}:
            return web.Response(status=404, text=f'container "{container}" not found in pod "{name}"')
        with counted(self._metrics, "logs"):
            chunks = self._provider.container_logs(PodRef.of(pod), container, options)
            return await logs.stream_log(request, chunks, options.limit_bytes)

    # Lifecycle

    async def run(self) -> None:
        """Serve until cancelled."""
        runner = web.AppRunner(self._build_app(), handler_cancellation=True, access_log=None)
        await runner.setup()
        assert runner.server is not None  # set by setup()
        front = self._front = FrontServer(aiohttp_factory=runner.server, wants_raw=wants_spdy, raw_handler=self._raw)
        try:
            server = await front.listen(self._settings.address, self._settings.port, ssl=self._ssl_context)
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            log.info("kubelet API listening on %s:%d", self._settings.address, self.port)
            await asyncio.Event().wait()
        finally:
            self.ready.clear()
            await front.close()
            await runner.cleanup()

    async def _raw(self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        refusal = await self._gate.check(head.method, head.path, head.headers, _peer_cert(writer.transport))
        if refusal is not None:
            self._metrics.request_done(_raw_route(head.path), refusal.status)
            await write_simple_response(writer, refusal.status, refusal.body, refusal.content_type)
            return
        self._metrics.request_done(_raw_route(head.path), 101)
        await self.sessions.serve_spdy(head, reader, writer)


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else "other"
    return canonical.split("/{", 1)[0] or "/"


def _raw_route(path: str) -> str:
    first = path.split("/", 2)[1] if path.count("/") >= 1 else ""
    return f"/{first}"

