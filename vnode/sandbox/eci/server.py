"""`EciEmulator`: the HTTP server answering ECI's RPC API at `/` the way the Aliyun SDK calls it.

A request carries every parameter in the query string (the SDK's GET and POST alike), or on POST partly in a form
body; `Action` picks the handler. Each request passes, in order: injected latency, signature check, injected
faults, the action's token bucket, then the action (and an injected lost answer); `/_emulator/` is the unsigned
operator API (`faults_api`). Answers are JSON with a `RequestId`; errors add `HostId`, `Code`, `Message` and
`Recommend` with the code's HTTP status. `run()` serves, and runs the group runtime (`settings.runtime`: sim or
docker), until cancelled; `ready` is set once it accepts requests and `endpoint` says where. This module must not
import the Aliyun SDK.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from vnode.clock import Clock
from vnode.config import EciEmulatorSettings
from vnode.sandbox.eci.actions import EciActions
from vnode.sandbox.eci.control import FaultInjector, RequestRecord, Throttler, loggable
from vnode.sandbox.eci.docker_runtime import DockerRuntime
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.faults_api import FaultApi
from vnode.sandbox.eci.metrics import EciMetrics, SimSampler
from vnode.sandbox.eci.pricing import EciPricing
from vnode.sandbox.eci.runtime import GroupRuntime
from vnode.sandbox.eci.signature import SignatureVerifier
from vnode.sandbox.eci.sim_runtime import SimRuntime, SimTimings
from vnode.sandbox.eci.store import GroupStore
from vnode.sandbox.eci.stream_actions import EciStreamActions

log = logging.getLogger(__name__)
API_VERSION = "2018-08-08"


class EciEmulator:
    def __init__(self, settings: EciEmulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.runtime = build_runtime(settings, clock)
        self.store = GroupStore(clock, self.runtime, retention_seconds=settings.retention_seconds)
        self.actions = EciActions(self.store, clock, region_id=settings.region_id, zone_id=settings.zone_id)
        self.actions.handlers.update(EciPricing(settings.prices, region_id=settings.region_id,
                                                zone_id=settings.zone_id).handlers)
        self.actions.handlers.update(EciMetrics(self.store, clock, SimSampler(
            self.runtime, cpu_share=settings.metric_cpu_share, memory_share=settings.metric_memory_share)).handlers)
        self.streams = EciStreamActions(self.store, self.runtime, clock, endpoint=lambda: self.endpoint,
                                        token_seconds=settings.exec_token_seconds,
                                        idle_timeout_seconds=settings.exec_idle_timeout_seconds)
        self.actions.handlers.update(self.streams.handlers)  # DescribeContainerLog, ExecContainerCommand
        self.verifier = SignatureVerifier({settings.access_key_id: settings.access_key_secret.get_secret_value()},
                                          clock, max_skew_seconds=settings.max_clock_skew_seconds,
                                          nonce_ttl_seconds=settings.nonce_ttl_seconds)
        self.throttler = Throttler(settings.throttles, clock)
        self.faults = FaultInjector()
        self.requests: deque[RequestRecord] = deque(maxlen=settings.request_log_size)
        self.host_id = f"eci.{settings.region_id}.aliyuncs.com"
        self.ready = asyncio.Event()
        self.endpoint = ""

    def inject(self, action: str, code: str, times: int = 1, *, http_status: int | None = None,
               message: str | None = None) -> None:
        """Make the next `times` calls of `action` ("*" = any) fail with `code` (status from the code table)."""
        self.faults.inject(action, code, times, http_status=http_status, message=message)

    def release_spot(self, group_id: str, notice_seconds: float) -> None:
        """Reclaim a spot group as ECI does: a Warning event SpotToBeReleased now, then after `notice_seconds` the
        group is Failed (SpotReleased) with its containers terminated. EciApiError for a NoSpot or ended group."""
        self.actions.release_spot(group_id, notice_seconds)

    def calls(self, action: str) -> list[RequestRecord]:
        return [record for record in self.requests if record.action == action]

    async def answer(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The HTTP status and body for one request (everything but the transport)."""
        request_id = str(uuid.uuid4()).upper()
        action = params.get("Action", "")
        arrived = self.clock.monotonic()
        await self.faults.delay(action, self.clock)  # injected latency
        try:
            body = self._dispatch(method, action, params)
            if inspect.isawaitable(body):
                body = await body
            self.faults.check_applied(action)  # an injected lost answer: the action took effect all the same
        except EciApiError as exc:
            self.requests.append(RequestRecord(action, method, loggable(params), exc.http_status, exc.code, arrived))
            return exc.http_status, exc.body(request_id, self.host_id)
        self.requests.append(RequestRecord(action, method, loggable(params), at=arrived))
        return 200, {"RequestId": request_id, **body}

    def _dispatch(self, method: str, action: str,
                  params: dict[str, str]) -> dict[str, Any] | Awaitable[dict[str, Any]]:
        self.verifier.verify(method, params)
        handler = self.actions.handlers.get(action)
        if handler is None or params.get("Version") != API_VERSION:
            raise EciApiError("InvalidAction.NotFound", f"Specified api is not found, please check your url and "
                              f"method: {action} {params.get('Version', '')}.")
        region = params.get("RegionId")
        if region is None:
            raise EciApiError("MissingParameter", 'The input parameter "RegionId" that is mandatory for processing '
                              "this request is not supplied.")
        if region != self.settings.region_id:
            raise EciApiError("InvalidRegionId", f"The specified region {region} does not exist.")
        self.faults.check(action, params)
        self.throttler.check(action)
        return handler(params)

    async def _handle(self, request: web.Request) -> web.Response:
        params = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            # Form fields are signed together with the query (aliyunsdkcore signs body params too).
            params.update(parse_qsl((await request.read()).decode(), keep_blank_values=True))
        try:
            status, body = await self.answer(request.method, params)
        except Exception:  # answer like the gateway does instead of aiohttp's bare text 500
            log.exception("ECI emulator: %s failed", params.get("Action"))
            error = EciApiError("InternalError")
            status, body = error.http_status, error.body(str(uuid.uuid4()).upper(), self.host_id)
        return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")

    async def run(self) -> None:
        """Serve and run the runtime until cancelled (or until the runtime fails: its error is raised)."""
        runtime = asyncio.create_task(self.runtime.run(), name="eci emulator runtime")
        try:
            await self._serve(runtime)
        finally:
            runtime.cancel()
            await asyncio.gather(runtime, return_exceptions=True)

    async def _serve(self, runtime: asyncio.Task[None]) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("GET", "/", self._handle)
        app.router.add_route("POST", "/", self._handle)
        app.router.add_route("GET", "/exec/", self.streams.exec_socket.handle)  # ExecContainerCommand's WebSocketUri
        FaultApi(self).add_routes(app)  # /_emulator/: faults, spot release, request log
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
            port = runner.addresses[0][1]
            host = self.settings.host
            self.endpoint = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
            self.ready.set()
            # Not `await runtime`: that would cancel the runtime along with us, and `run` cancels it again while
            # it cleans up (the docker runtime removes its containers then).
            await asyncio.wait({runtime})
            runtime.result()
            raise RuntimeError("the ECI emulator's runtime stopped")
        finally:
            self.ready.clear()
            await runner.cleanup()


def build_runtime(settings: EciEmulatorSettings, clock: Clock) -> GroupRuntime:
    """The runtime `settings.runtime` names."""
    if settings.runtime == "docker":
        return DockerRuntime(settings, clock)
    return SimRuntime(clock, SimTimings(settings.scheduling_seconds, settings.pending_seconds,
                                        settings.restart_seconds))
