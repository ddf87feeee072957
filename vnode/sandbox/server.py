"""The sandbox API server: composes storage, registry, REST, discovery, auth, kubelet proxying and controllers.

`SandboxApiServer.run()` serves HTTPS until cancelled; `ready` is set once it accepts requests and `url` says
where. It owns every task it starts (scheduler, node lifecycle, CSR signer, raw upgrade connections) and stops
them in reverse order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from vnode.clock import Clock
from vnode.config import SandboxSettings
from vnode.sandbox import auth, discovery, kubelet_location, openapi, proxy, status
from vnode.sandbox.apipath import ApiPath, parse_api_path
from vnode.sandbox.csrsigner import CsrSigner
from vnode.sandbox.eventlog import EventLog
from vnode.sandbox.nodelifecycle import NodeLifecycleController
from vnode.sandbox.pki import SandboxPKI
from vnode.sandbox.registry import Registry
from vnode.sandbox.resources import ResourceRegistry, ResourceType
from vnode.sandbox.rest import REQUEST_USER, RestApi, RestSettings
from vnode.sandbox.satokens import ServiceAccountTokens
from vnode.sandbox.scheduler import Scheduler
from vnode.sandbox.store import Obj, Store
from vnode.util.front import FrontServer, RequestHead, write_simple_response
from vnode.util.tasks import TaskSupervisor

log = logging.getLogger(__name__)
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(obj: Any, code: int = 200) -> web.Response:
    return web.Response(body=json.dumps(obj).encode(), status=code, content_type="application/json")


class SandboxApiServer:
    def __init__(self, settings: SandboxSettings, *, clock: Clock, pki: SandboxPKI, tokens: auth.StaticTokens,
                 authorizer: auth.Authorizer) -> None:
        self.settings = settings
        self.clock = clock
        self.pki = pki
        self.service_account_tokens = ServiceAccountTokens(clock)
        self.authenticator = auth.Authenticator(tokens, issued=self.service_account_tokens.lookup)
        self.authorizer = authorizer
        self.resources = ResourceRegistry()
        self.store = Store(history_size=settings.watch_history)
        self.registry = Registry(self.store, clock, self.resources, namespace_bootstrap=self._namespace_objects)
        self.events = EventLog(self.store, clock)
        self.kubelet_proxy = proxy.KubeletProxy(pki.kubelet_client_ssl_context())
        self.rest = RestApi(self.registry, clock, RestSettings(settings.watch_timeout_seconds,
                                                               settings.bookmark_interval_seconds),
                            proxy=self._proxy_http, review=self._review, token_request=self._token_request)
        self.ready = asyncio.Event()
        self.url = ""
        for name in SYSTEM_NAMESPACES:
            self.registry.create(self.resources.lookup("", "v1", "namespaces"),  # type: ignore[arg-type]
                                 "", {"metadata": {"name": name}})

    # Objects kube-controller-manager puts in every namespace: the default ServiceAccount and the root CA.

    def _namespace_objects(self, namespace: str) -> list[tuple[str, Obj]]:
        return [
            ("serviceaccounts", {"kind": "ServiceAccount", "apiVersion": "v1",
                                 "metadata": {"name": "default", "namespace": namespace}}),
            ("configmaps", {"kind": "ConfigMap", "apiVersion": "v1",
                            "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
                            "data": {"ca.crt": self.pki.ca_pem().decode()}}),
        ]

    # HTTP

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors, self._authenticate], client_max_size=8 * 1024 * 1024)
        app.router.add_get("/healthz", self._ok)
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/readyz", self._ok)
        app.router.add_get("/version", self._version)
        app.router.add_get("/api", self._core_versions)
        app.router.add_get("/api/v1", self._core_resources)
        app.router.add_get("/apis", self._groups)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_route("*", "/api/v1/{tail:.+}", self.rest.handle)
        app.router.add_route("*", "/apis/{tail:.+}", self._apis)
        return app

    @staticmethod
    async def _ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    @staticmethod
    async def _version(request: web.Request) -> web.Response:
        return _json(discovery.version_info())

    @staticmethod
    async def _core_versions(request: web.Request) -> web.Response:
        return _json(discovery.core_versions(request.host))

    async def _core_resources(self, request: web.Request) -> web.Response:
        return await self._answer(discovery.resource_list(self.resources, "", "v1"))

    async def _groups(self, request: web.Request) -> web.Response:
        return _json(discovery.group_list(self.resources))

    @staticmethod
    async def _openapi_v2(request: web.Request) -> web.Response:
        if "protobuf" in request.headers.get("Accept", ""):
            return web.Response(body=openapi.document_protobuf(), content_type=openapi.PROTOBUF_TYPE)
        return web.Response(body=openapi.document_json(), content_type="application/json")

    @staticmethod
    async def _answer(obj: Obj | None) -> web.Response:
        if obj is None:
            raise status.path_not_found()
        return _json(obj)

    async def _apis(self, request: web.Request) -> web.StreamResponse:
        parts = request.match_info["tail"].strip("/").split("/")
        if request.method == "GET" and len(parts) == 1:
            if parts[0] not in self.resources.group_versions():
                raise status.path_not_found()
            return _json(discovery.group(self.resources, parts[0]))
        if request.method == "GET" and len(parts) == 2:
            return await self._answer(discovery.resource_list(self.resources, parts[0], parts[1]))
        return await self.rest.handle(request)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except status.ApiError as exc:
            return _json(exc.to_status(), exc.code)
        except kubelet_location.ProxyError as exc:
            return _json(status.ApiError(exc.code, exc.reason, exc.message).to_status(), exc.code)
        except web.HTTPException:
            raise
        except Exception as exc:  # answer like kube-apiserver does, instead of aiohttp's bare text 500
            log.exception("%s %s failed", request.method, request.path)
            error = status.ApiError(500, "InternalError", f"Internal error occurred: {exc}")
            return _json(error.to_status(), 500)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _PUBLIC_PATHS:
            return await handler(request)
        user = self.authenticator.authenticate(_peer_cert(request.transport),
                                               request.headers.get("Authorization"))
        if user is None:
            return _json(auth.unauthorized_status(), 401)
        self._authorize(user, request.method, request.path, request.query)
        request[REQUEST_USER] = user
        return await handler(request)

    def _authorize(self, user: auth.UserInfo, method: str, path: str, query: Any) -> None:
        try:
            attrs = auth.request_attributes(method, path, query)
        except auth.RequestInfoError as exc:
            raise status.bad_request(str(exc)) from exc
        decision = self.authorizer.authorize(user, attrs)
        if not decision.allowed:
            forbidden = auth.forbidden_status(user, attrs, decision.reason)
            raise status.ApiError(403, "Forbidden", forbidden["message"], forbidden.get("details"))

    def _review(self, request: web.Request, rtype: ResourceType, body: Obj) -> Obj:
        try:
            if rtype.kind == "TokenReview":
                return auth.token_review(body, self.authenticator)
            return auth.subject_access_review(body, self.authorizer)
        except auth.ReviewError as exc:
            raise status.ApiError(exc.code, exc.reason, str(exc)) from exc

    def _token_request(self, namespace: str, name: str, body: Obj) -> Obj:
        accounts = self.resources.lookup("", "v1", "serviceaccounts")
        assert accounts is not None
        return self.service_account_tokens.issue(namespace, self.registry.get(accounts, namespace, name), body)

    # Kubelet proxying

    def _kubelet_location(self, target: ApiPath, query: list[tuple[str, str]]) -> kubelet_location.KubeletLocation:
        assert target.name is not None
        if target.rtype.resource == "nodes":
            node = self.registry.get(target.rtype, "", target.name)
            return kubelet_location.node_proxy_location(node, target.rest, query)
        pods = self.resources.lookup("", "v1", "pods")
        nodes = self.resources.lookup("", "v1", "nodes")
        assert pods is not None and nodes is not None
        pod = self.registry.get(pods, target.namespace or "", target.name)
        node_name = (pod.get("spec") or {}).get("nodeName")
        host = self.store.get("nodes", "", node_name) if node_name else None
        if node_name and host is None:
            raise status.not_found("nodes", "", node_name)
        return kubelet_location.pod_location(pod, host, target.subresource or "", query)

    async def _proxy_http(self, request: web.Request, target: ApiPath) -> web.StreamResponse:
        location = self._kubelet_location(target, list(request.query.items()))
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if target.subresource == "log":
                assert target.name is not None
                return await self.kubelet_proxy.stream_log_websocket(request, location, target.name)
            return await self.kubelet_proxy.relay_websocket(request, location)
        # Pod logs get kube-apiserver's log error translation (kubelet errors become a Status naming the pod).
        log_name = target.name if target.subresource == "log" else None
        return await self.kubelet_proxy.proxy_http(request, location, pod_log_name=log_name)

    def _wants_raw(self, head: RequestHead) -> bool:
        """Upgrades (SPDY or WebSocket) to kubelet-bound subresources are spliced byte for byte."""
        if "upgrade" not in head.headers.get("connection", "").lower():
            return False
        target = parse_api_path(head.path, self.resources)
        return target is not None and target.subresource in ("exec", "attach", "portforward", "proxy")

    async def _raw_upgrade(self, head: RequestHead, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        try:
            user = self.authenticator.authenticate(_peer_cert(writer.transport), head.headers.get("authorization"))
            if user is None:
                await write_simple_response(writer, 401, json.dumps(auth.unauthorized_status()).encode())
                return
            self._authorize(user, head.method, head.path, dict(head.query))
            target = parse_api_path(head.path, self.resources)
            assert target is not None
            location = self._kubelet_location(target, list(head.query))
        except status.ApiError as exc:
            await write_simple_response(writer, exc.code, json.dumps(exc.to_status()).encode())
            return
        except kubelet_location.ProxyError as exc:
            error = status.ApiError(exc.code, exc.reason, exc.message)
            await write_simple_response(writer, exc.code, json.dumps(error.to_status()).encode())
            return
        await self.kubelet_proxy.splice_upgrade(head, reader, writer, location)

    # Lifecycle

    async def run(self) -> None:
        """Serve until cancelled."""
        runner = web.AppRunner(self._build_app(), handler_cancellation=True, access_log=None)
        await runner.setup()
        assert runner.server is not None  # set by setup()
        front = FrontServer(aiohttp_factory=runner.server, wants_raw=self._wants_raw,
                            raw_handler=self._raw_upgrade)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(front.protocol_factory, self.settings.api_host, self.settings.api_port,
                                          ssl=self.pki.server_ssl_context())
        port = server.sockets[0].getsockname()[1]
        host = self.settings.api_host
        self.url = f"https://{'[' + host + ']' if ':' in host else host}:{port}"
        tasks = TaskSupervisor("sandbox")
        tasks.spawn(Scheduler(self.registry, self.clock, self.events).run(), name="scheduler")
        tasks.spawn(NodeLifecycleController(
            self.store, self.clock, self.events, grace_seconds=self.settings.node_monitor_grace_seconds,
            period_seconds=self.settings.node_monitor_period_seconds).run(), name="node lifecycle controller")
        tasks.spawn(CsrSigner(self.store, self.pki.sign_csr).run(), name="csr signer")
        self.ready.set()
        try:
            await tasks.failed.wait()
            raise RuntimeError("a sandbox controller stopped") from tasks.failure
        finally:
            self.ready.clear()
            server.close()
            await front.close()
            await tasks.stop()
            await runner.cleanup()
            await server.wait_closed()
            await self.kubelet_proxy.close()


def _peer_cert(transport: asyncio.BaseTransport | None) -> bytes | None:
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der


def ca_data(pki: SandboxPKI) -> str:
    return base64.b64encode(pki.ca_pem()).decode()
