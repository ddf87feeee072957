"""`EciClient`: the async, rate-limited, retrying wrapper over aliyun-python-sdk-core for ECI's RPC API (2018-08-08).

Owns the SDK (the only vnode module that imports it), its worker threads (the SDK blocks), endpoint/protocol and
timeouts, per-action token buckets, retries with backoff and idempotency tokens, and the translation of SDK errors
into `vnode.errors`. It must not know about pods: callers pass ECI parameters and get ECI's JSON back.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Literal

from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http import protocol_type
from aliyunsdkcore.request import RpcRequest

from vnode.clock import Clock, SystemClock
from vnode.errors import BackendUnavailable, ConfigError, Conflict, InvalidPod, NotFound, Throttled, VnodeError
from vnode.providers.eci.credentials import Credentials, CredentialSource
from vnode.providers.eci.quota import Quota, RateLimiter, RetryPolicy

API_VERSION = "2018-08-08"
# S1 sends these as POST (parameters still in the query string); eci-wire.md §3 says Events is POST-only too.
_POST_ACTIONS = frozenset({"DescribeContainerGroupStatus", "DescribeContainerGroupEvents", "DeleteContainerGroups"})
# A group's spec (env, base64 config files) outgrows a URL: these go as a signed POST form body instead, as the
# gateway accepts for every RPC action (the SDK signs body parameters together with the query).
_FORM_ACTIONS = frozenset({"CreateContainerGroup", "UpdateContainerGroup"})
# Transport failures: the SDK wraps every IOError (refused, reset, timeouts) as SDK.HttpError.
_NETWORK_CODES = frozenset({"SDK.HttpError", "SDK.ServerUnreachable"})
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeySecret", "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound",
                               "InvalidAccessKeyId", "InvalidAccessKeyId.Inactive", "InvalidSecurityToken.Expired",
                               "InvalidSecurityToken.MismatchWithAccessKey", "InvalidSecurityToken.Malformed",
                               "SDK.InvalidCredential"})
# Quota codes ECI will not lift within a backoff: a daily vCPU cap and the account's resource quota (eci-wire §4).
_SLOW_QUOTAS = {"Throttling.Vcpu.PerDay": 3600.0, "QuotaExceeded": 60.0}

RetryKind = Literal["throttled", "unavailable"]


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested ECI parameters → RPC query keys: lists become `.1`, `.2`…, dicts `.Key`; bools are `true`/`false`
    (the SDK's request classes would send Python's `True`); None is left out."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            for n, item in enumerate(value, start=1):
                flat.update(flatten({str(n): item}, f"{name}."))
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        else:
            flat[name] = str(value)
    return flat


def tag_params(tags: Mapping[str, str]) -> dict[str, str]:
    return flatten({"Tag": [{"Key": k, "Value": v} for k, v in tags.items()]})


def retry_kind(code: str, http_status: int | None) -> RetryKind | None:
    """Whether a failure is worth retrying with the same ClientToken, and why. 4xx other than throttling: never."""
    if code in _SLOW_QUOTAS:
        return None
    # Throttling, Throttling.User, Throttling.Api, Rejected.Throttling…; Degrade.Api is the gateway shedding load.
    if "Throttling" in code or code == "Degrade.Api":
        return "throttled"
    if code in _NETWORK_CODES or code == "Request Timeout":  # sic, with a space: DescribeContainerLog's 408
        return "unavailable"
    if http_status is not None and (http_status >= 500 or http_status == 408):
        return "unavailable"
    return None


def translate(action: str, code: str, http_status: int | None, message: str, request_id: str | None, *,
              credentials: str, retry_after_seconds: float | None = None) -> VnodeError:
    """The vnode error for a failed ECI call; messages carry the code and RequestId, never secrets."""
    where = f" (RequestId {request_id})" if request_id else ""
    text = f"ECI {action}: {code}: {message}{where}"
    kind = retry_kind(code, http_status)
    if kind == "throttled":
        return Throttled(text, retry_after_seconds=retry_after_seconds)
    if kind == "unavailable":
        return BackendUnavailable(text)
    if code in _SLOW_QUOTAS:
        return Throttled(text, retry_after_seconds=_SLOW_QUOTAS[code])
    if code in _CREDENTIAL_CODES or code.startswith("InvalidSecurityToken"):
        # The gateway's SignatureDoesNotMatch message echoes its string-to-sign (with any STS token): leave it out.
        return ConfigError(f"ECI {action}: {code}: Alibaba Cloud refused the credentials from {credentials}{where}")
    if code.startswith(("Forbidden", "NoPermission", "Account.", "SDK.")) or code in (
            "InvalidRegionId", "InvalidAction.NotFound", "InvalidTimeStamp.Expired"):
        return ConfigError(text)
    if code.endswith(".NotFound") or http_status == 404:
        return NotFound(text)
    if code == "IncorrectStatus":
        return Conflict(text)
    return InvalidPod(text)


def error_code(exc: BaseException) -> str | None:
    """The ECI/SDK error code behind a vnode error raised by `EciClient` (e.g. `OperationDenied.NoStock`)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ServerException | ClientException):
            code: str = cause.get_error_code()
            return code
        cause = cause.__cause__
    return None


class EciClient:
    """`await call(action, params, mutating=...)` → ECI's JSON answer; typed helpers for the group actions."""

    def __init__(self, *, region_id: str, credentials: CredentialSource, endpoint: str | None = None,
                 quotas: Mapping[str, Quota] | None = None, retry: RetryPolicy | None = None, max_workers: int = 8,
                 connect_timeout_seconds: float = 5.0, read_timeout_seconds: float = 10.0,
                 clock: Clock | None = None, uniform: Callable[[], float] = random.random) -> None:
        self.region_id = region_id
        # A bare host gets HTTPS; an explicit http:// endpoint (the emulator) is used as is.
        self.endpoint = endpoint
        self._protocol = protocol_type.HTTP if endpoint and endpoint.startswith("http://") else protocol_type.HTTPS
        self._credentials = credentials
        self._clock = clock or SystemClock()
        self.limiter = RateLimiter(self._clock, quotas)
        self.retry = retry or RetryPolicy()
        self._uniform = uniform
        self._timeouts = (connect_timeout_seconds, read_timeout_seconds)
        self._max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="eci-api")
        self._lock = threading.Lock()
        self._acs: tuple[Credentials, AcsClient] | None = None
        self._retired: list[AcsClient] = []

    def __repr__(self) -> str:
        return f"EciClient(region_id={self.region_id!r}, endpoint={self.endpoint!r}, credentials={self._credentials!r})"

    async def aclose(self) -> None:
        """Stop the workers (queued calls are cancelled, running ones finish) and close the SDK's connections."""
        await asyncio.get_running_loop().run_in_executor(None, partial(self._pool.shutdown, wait=True,
                                                                       cancel_futures=True))
        with self._lock:
            clients = self._retired + ([self._acs[1]] if self._acs else [])
            self._acs, self._retired = None, []
        for client in clients:
            client.session.close()

    async def call(self, action: str, params: Mapping[str, Any], *, mutating: bool) -> dict[str, Any]:
        """One logical call: rate-limited attempts until success, a non-retryable error, or `retry.max_attempts`.

        A mutating call gets a `ClientToken` (unless the caller gave one, e.g. derived from the pod UID) that every
        retry repeats, so ECI applies it at most once.
        """
        query = flatten(params)
        if mutating:
            query.setdefault("ClientToken", uuid.uuid4().hex)  # ≤ 64 ASCII characters
        loop = asyncio.get_running_loop()
        for attempt in range(self.retry.max_attempts):
            await self.limiter.acquire(action)
            try:
                body = await loop.run_in_executor(self._pool, self._send, action, query)
            except (ServerException, ClientException) as exc:
                code, status = exc.get_error_code(), getattr(exc, "get_http_status", lambda: None)()
                kind = retry_kind(code, status)
                last = attempt + 1 >= self.retry.max_attempts
                if kind is None or last:
                    cause = _redacted(exc) if code == "SignatureDoesNotMatch" else exc
                    raise translate(action, code, status, exc.get_error_msg(),
                                    getattr(exc, "get_request_id", lambda: None)(),
                                    credentials=self._credentials.describe(),
                                    retry_after_seconds=self.retry.ceiling_seconds(attempt, throttled=True)) from cause
                await self._clock.sleep(self.retry.delay_seconds(attempt, throttled=kind == "throttled",
                                                                 uniform=self._uniform))
                continue
            answer: dict[str, Any] = json.loads(body)
            return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _client(self) -> AcsClient:
        credentials = self._credentials.current()  # may stat files: runs on a worker thread
        with self._lock:
            if self._acs is None or self._acs[0] != credentials:
                if self._acs is not None:
                    self._retired.append(self._acs[1])  # other workers may still be using it
                self._acs = (credentials, _acs_client(credentials, self.region_id, self._max_workers))
            return self._acs[1]

    def _send(self, action: str, query: Mapping[str, str]) -> bytes:
        client = self._client()
        request = RpcRequest("Eci", API_VERSION, action, "eci")  # fresh per attempt: signing mutates a request
        request.set_method("POST" if action in _POST_ACTIONS | _FORM_ACTIONS else "GET")
        request.set_protocol_type(self._protocol)
        if self.endpoint:
            request.set_endpoint(self.endpoint)  # wins over every resolver, incl. the location-service lookup
        request.set_connect_timeout(self._timeouts[0])
        request.set_read_timeout(self._timeouts[1])
        add = request.add_body_params if action in _FORM_ACTIONS else request.add_query_param
        for key, value in query.items():
            add(key, value)
        body: bytes = client.do_action_with_exception(request)
        return body

    # Typed helpers for the actions the provider uses most.

    async def create_container_group(self, params: Mapping[str, Any]) -> str:
        answer = await self.call("CreateContainerGroup", params, mutating=True)
        group_id: str = answer["ContainerGroupId"]
        return group_id

    async def describe_container_groups(self, *, ids: list[str] | None = None, tags: Mapping[str, str] | None = None,
                                        name: str | None = None, status: str | None = None, limit: int = 20,
                                        next_token: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"ContainerGroupIds": json.dumps(ids) if ids else None, "ContainerGroupName": name,
                                  "Status": status, "Limit": limit, "NextToken": next_token or None,
                                  **tag_params(tags or {})}
        return await self.call("DescribeContainerGroups", params, mutating=False)

    async def describe_container_group_status(self, *, ids: list[str] | None = None,
                                              tags: Mapping[str, str] | None = None, since_seconds: int | None = None,
                                              limit: int = 200, next_token: str | None = None) -> dict[str, Any]:
        # Always send Limit: the prose default is 200, the schema's 50 (eci-wire.md §3).
        params: dict[str, Any] = {"ContainerGroupIds": json.dumps(ids) if ids else None,
                                  "SinceSecond": since_seconds, "Limit": limit, "NextToken": next_token or None,
                                  **tag_params(tags or {})}
        return await self.call("DescribeContainerGroupStatus", params, mutating=False)

    async def delete_container_group(self, group_id: str, *, client_token: str | None = None,
                                     force: bool | None = None) -> None:
        await self.call("DeleteContainerGroup", {"ContainerGroupId": group_id, "ClientToken": client_token,
                                                 "Force": force}, mutating=True)


def _acs_client(credentials: Credentials, region_id: str, pool_size: int) -> AcsClient:
    # auto_retry=False: the SDK's policy retries only ECS APIs anyway; ours is in `EciClient.call`.
    if credentials.security_token:
        sts = StsTokenCredential(credentials.access_key_id, credentials.access_key_secret,
                                 credentials.security_token)
        return AcsClient(region_id=region_id, credential=sts, auto_retry=False, pool_size=pool_size)
    return AcsClient(credentials.access_key_id, credentials.access_key_secret, region_id, auto_retry=False,
                     pool_size=pool_size)


def _redacted(exc: ServerException | ClientException) -> ServerException:
    # SignatureDoesNotMatch echoes the string-to-sign, which holds an STS SecurityToken when one is used.
    return ServerException(exc.get_error_code(), "(message withheld: it echoes the signed request)",
                           http_status=getattr(exc, "get_http_status", lambda: None)(),
                           request_id=getattr(exc, "get_request_id", lambda: None)())
