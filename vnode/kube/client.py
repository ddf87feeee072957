"""`KubeClient`: the one way vnode talks to kube-apiserver, as JSON dicts on raw REST paths.

Owns the HTTP session (kubernetes_asyncio's REST client, for its TLS and credential handling), client-side rate
limiting (client-go's QPS/burst token bucket), JSON encoding and decoding, and the translation of every failure
into `vnode.errors`. It must not deserialize into kubernetes_asyncio models (json.loads is ~30x faster), retry,
or know what the objects mean: callers build paths with `vnode.kube.paths` and own their retry policy.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client import rest

from vnode.clock import Clock
from vnode.errors import ApiServerUnavailable
from vnode.kube.apierrors import error_for_status
from vnode.kube.kubeconfig import load_configuration
from vnode.kube.ratelimit import TokenBucket

JsonObj = dict[str, Any]
JsonPatch = dict[str, Any] | list[Any]
Params = Mapping[str, str | int | float | bool]
PatchType = Literal["strategic", "merge", "json"]

PATCH_CONTENT_TYPES: dict[str, str] = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
# A watch stream may stay silent until its timeoutSeconds; allow this much longer before calling it dead.
WATCH_READ_GRACE_SECONDS = 30.0


def _query(params: Params | None) -> dict[str, str]:
    # Go's strconv.ParseBool wants "true"/"false"; Python would send "True".
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in (params or {}).items()}


class KubeClient:
    """JSON-in, JSON-out verbs on API paths; every request first waits for a token from `limiter`.

    Build it inside a running event loop (it owns an aiohttp session) and close it when done.
    """

    def __init__(self, configuration: client.Configuration, *, clock: Clock, qps: float = 50, burst: int = 100,
                 request_timeout_seconds: float = 60.0) -> None:
        """Wraps an already loaded `Configuration`; most callers want `KubeClient.connect`."""
        self.configuration = configuration
        self.host = str(configuration.host or "").rstrip("/")
        self.limiter = TokenBucket(qps, burst, clock=clock)
        self._timeout = request_timeout_seconds
        self._rest = rest.RESTClientObject(configuration)

    @classmethod
    async def connect(cls, kubeconfig: Path | None = None, *, context: str | None = None, qps: float = 50,
                      burst: int = 100, clock: Clock) -> KubeClient:
        """Explicit kubeconfig, else $KUBECONFIG, else in-cluster service account, else ~/.kube/config."""
        configuration = await load_configuration(kubeconfig, context=context)
        return cls(configuration, clock=clock, qps=qps, burst=burst)

    async def close(self) -> None:
        await self._rest.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # Transport

    async def _send(self, method: str, path: str, params: Params | None, *, body: Any = None,
                    content_type: str = "application/json",
                    http_timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientResponse:
        """One rate-limited request; the caller owns (and must release) the returned response."""
        await self.limiter.acquire()
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        # auth_settings runs the refresh hook: a rotated service account token or an expired exec token is
        # re-read here, before every request.
        for auth in (await self.configuration.auth_settings()).values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        try:
            response: aiohttp.ClientResponse = await self._rest.request(
                method, self.host + path, query_params=_query(params), headers=headers, body=body,
                _preload_content=False, _request_timeout=http_timeout or aiohttp.ClientTimeout(total=self._timeout))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ApiServerUnavailable(f"{method} {path}: {exc!r}") from exc
        if response.status >= 300:
            try:
                data = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ApiServerUnavailable(f"{method} {path}: HTTP {response.status}, body lost: {exc!r}") from exc
            finally:
                response.release()
            raise error_for_status(response.status, data, retry_after=response.headers.get("Retry-After"),
                                   reason_phrase=response.reason or "", what=f"{method} {path}")
        return response

    async def _call(self, method: str, path: str, params: Params | None = None, *, body: Any = None,
                    content_type: str = "application/json") -> JsonObj:
        response = await self._send(method, path, params, body=body, content_type=content_type)
        try:
            data = await response.read()
            decoded = json.loads(data)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiServerUnavailable(f"{method} {path}: reading the response: {exc!r}") from exc
        except ValueError as exc:
            raise ApiServerUnavailable(f"{method} {path}: response is not JSON: {exc}") from exc
        finally:
            response.release()
        if not isinstance(decoded, dict):
            raise ApiServerUnavailable(f"{method} {path}: response is not a JSON object")
        return decoded

    # Verbs

    async def get(self, path: str, params: Params | None = None) -> JsonObj:
        return await self._call("GET", path, params)

    async def create(self, path: str, body: JsonObj, params: Params | None = None) -> JsonObj:
        """POST to a collection path; 409 (`Conflict`) when the name is taken."""
        return await self._call("POST", path, params, body=body)

    async def replace(self, path: str, body: JsonObj, params: Params | None = None) -> JsonObj:
        """PUT; a body carrying metadata.resourceVersion is an optimistic-concurrency update (409 if stale)."""
        return await self._call("PUT", path, params, body=body)

    async def patch(self, path: str, body: JsonPatch, *, patch_type: PatchType = "strategic",
                    params: Params | None = None) -> JsonObj:
        """PATCH: strategic merge (core types only), JSON merge (RFC 7386), or JSON patch (RFC 6902, a list)."""
        return await self._call("PATCH", path, params, body=body, content_type=PATCH_CONTENT_TYPES[patch_type])

    async def delete(self, path: str, *, grace_period_seconds: int | None = None,
                     preconditions: Mapping[str, str] | None = None,
                     propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None) -> JsonObj:
        """DELETE with DeleteOptions; `preconditions` ({"uid": ..., "resourceVersion": ...}) fail with 409.

        Returns the object (still present, with deletionTimestamp, while graceful deletion runs) or a Status.
        """
        options: JsonObj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        return await self._call("DELETE", path, body=options)

    async def watch(self, path: str, params: Params | None = None) -> AsyncGenerator[JsonObj, None]:
        """Stream `{"type", "object"}` events of a collection until the server ends the watch (`timeoutSeconds`).

        An ERROR frame raises its mapped error (`Expired` for 410); a broken stream raises `ApiServerUnavailable`.
        Close it with `contextlib.aclosing` when stopping early so the connection is released at once.
        """
        query = {**(params or {}), "watch": True}
        server_timeout = query.get("timeoutSeconds")
        read_timeout = float(server_timeout) + WATCH_READ_GRACE_SECONDS if server_timeout else None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout, sock_read=read_timeout)
        # Like client-go, a long-running watch costs one token to start.
        response = await self._send("GET", path, query, http_timeout=timeout)
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as exc:
                    raise ApiServerUnavailable(f"watch {path}: undecodable frame: {exc}") from exc
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise error_for_status(int(status.get("code") or 500), status, what=f"watch {path}")
                yield event
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError: aiohttp refuses a line longer than its buffer limit.
            raise ApiServerUnavailable(f"watch {path}: stream broken: {exc!r}") from exc
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    # Defined last: inside the class body, `list` would otherwise shadow the builtin in annotations.
    async def list(self, path: str, params: Params | None = None) -> JsonObj:
        """GET a collection; pass `limit` and `continue` to page, `fieldSelector`/`labelSelector` to filter."""
        return await self._call("GET", path, params)
