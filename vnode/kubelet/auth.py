"""Who is calling the kubelet API, and may they: the kubelet's delegated authentication and authorization.

Owns the union authenticator (verified x509 client certificate, then a bearer token or a WebSocket-protocol token
checked with a TokenReview, then anonymous), the request → (verb, subresource) mapping with vnode's hardening of
the streaming routes, the SubjectAccessReview authorizer with its allow and deny caches, and the 401/403 bodies.
It must not serve HTTP or verify certificates (the TLS layer does), and never logs a token or keeps one in clear:
the token cache is keyed by a keyed hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import posixpath
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vnode.clock import Clock
from vnode.config import KubeletSettings
from vnode.errors import VnodeError
from vnode.kube import paths
from vnode.kube.client import KubeClient

log = logging.getLogger(__name__)

ANONYMOUS_USER = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATED_GROUP = "system:authenticated"
# What Go's net/http sniffs for the kubelet's plain-text refusals (go-restful's WriteErrorString sets no type).
BODY_CONTENT_TYPE = "text/plain; charset=utf-8"
# The subprotocol browsers use to carry a bearer token, since they cannot set Authorization on a WebSocket.
_WS_TOKEN_PREFIX = "base64url.bearer.authorization.k8s.io."
TOKEN_CACHE_ENTRIES = 4096
DECISION_CACHE_ENTRIES = 8192

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...]
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class _ExpiringCache(Generic[K, V]):
    """A bounded LRU whose entries expire on the injected clock; the least recently used goes when full."""

    def __init__(self, clock: Clock, max_entries: int) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if self._clock.monotonic() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            return
        self._entries[key] = (value, self._clock.monotonic() + ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


# --- Authentication ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TokenAnswer:
    user: UserInfo | None  # None: the API server said the token is not valid


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return [str(v) for v in getall(name, [])]
    value = headers.get(name)
    return [] if value is None else [value]


def _certificate_user(peer_cert: Mapping[str, Any]) -> UserInfo | None:
    """x509.CommonNameUserConversion on `getpeercert()`'s subject: CN is the user, each O a group."""
    common_name, organizations = "", []
    for rdn in peer_cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_name = str(value)  # Go's pkix.Name keeps the last CN it meets
            elif key == "organizationName":
                organizations.append(str(value))
    # No CN: this authenticator has no opinion and the union moves on.
    return UserInfo(common_name, tuple(organizations)) if common_name else None


def _bearer_token(headers: Mapping[str, str]) -> str | None:
    """bearertoken.Authenticator: None when absent, '' when malformed (a failed credential), else the token."""
    values = _header_values(headers, "Authorization")
    parts = values[0].strip().split(" ", 2) if values else []
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _websocket_token(headers: Mapping[str, str]) -> str | None:
    """websocket.ProtocolAuthenticator: a token in `Sec-WebSocket-Protocol`, only on a WebSocket upgrade."""
    connection = [v.strip().lower() for line in _header_values(headers, "Connection") for v in line.split(",")]
    if "upgrade" not in connection or headers.get("Upgrade", "").strip().lower() != "websocket":
        return None
    protocols = [p.strip() for line in _header_values(headers, "Sec-WebSocket-Protocol") for p in line.split(",")]
    carried = [p for p in protocols if p.startswith(_WS_TOKEN_PREFIX)]
    if not carried:
        return None
    # One token only, and another subprotocol must remain for the server to choose.
    if len(carried) > 1 or len(carried) == len(protocols):
        return ""
    encoded = carried[0][len(_WS_TOKEN_PREFIX):]
    try:  # base64.RawURLEncoding: URL alphabet, no padding
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, ValueError):
        return ""


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _reviewed_user(review: Mapping[str, Any]) -> UserInfo | None:
    status = review.get("status") or {}
    user = status.get("user") or {}
    name = user.get("username")
    if status.get("authenticated") is not True or not isinstance(name, str) or not name:
        return None
    extra = user.get("extra")
    extra = extra if isinstance(extra, dict) else {}
    uid = user.get("uid")
    return UserInfo(name, _strings(user.get("groups")), uid if isinstance(uid, str) else "",
                    {str(k): _strings(v) for k, v in extra.items()})


def _with_authenticated_group(user: UserInfo) -> UserInfo:
    # group.AuthenticatedGroupAdder wraps the union (not anonymous): every authenticated user is in this group.
    if user.name == ANONYMOUS_USER or {AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP} & set(user.groups):
        return user
    return UserInfo(user.name, (*user.groups, AUTHENTICATED_GROUP), user.uid, user.extra)


class KubeletAuthenticator:
    """The kubelet's DelegatingAuthenticatorConfig: union(x509, bearer, WebSocket token), then anonymous.

    A presented token that is refused (or cannot be checked) fails the request even with anonymous enabled, as
    upstream's FailOnError union does; only a request with no usable credentials becomes system:anonymous.
    """

    def __init__(self, settings: KubeletSettings, client: KubeClient | None, clock: Clock) -> None:
        self._settings = settings
        self._client = client if settings.authentication_webhook else None
        self._hash_key = secrets.token_bytes(32)
        self._cache: _ExpiringCache[bytes, _TokenAnswer] = _ExpiringCache(clock, TOKEN_CACHE_ENTRIES)

    async def authenticate(self, headers: Mapping[str, str], peer_cert: Mapping[str, Any] | None,
                           ) -> UserInfo | None:
        """The caller, or None for 401. `peer_cert` is `getpeercert()`, already verified against the client CA."""
        # Without a client CA nothing was verified, so a certificate proves nothing (upstream adds no x509 then).
        if peer_cert and self._settings.client_ca_file is not None:
            user = _certificate_user(peer_cert)
            if user is not None:
                return _with_authenticated_group(user)
        failed = False
        if self._client is not None:
            for token in (_bearer_token(headers), _websocket_token(headers)):
                if token is None:
                    continue
                user = await self._review(self._client, token) if token else None
                if user is not None:
                    return _with_authenticated_group(user)
                failed = True
        if failed or not self._settings.anonymous:
            return None
        return UserInfo(ANONYMOUS_USER, (UNAUTHENTICATED_GROUP,))

    async def _review(self, client: KubeClient, token: str) -> UserInfo | None:
        key = hmac.new(self._hash_key, token.encode(), hashlib.sha256).digest()
        cached = self._cache.get(key)
        if cached is not None:
            return cached.user
        body = {"apiVersion": paths.AUTHENTICATION_V1, "kind": "TokenReview", "spec": {"token": token}}
        try:
            review = await client.create(paths.tokenreviews_path(), body)
        except VnodeError as exc:
            # Not cached: the next request asks again once the API server is back.
            log.warning("kubelet API: TokenReview failed, refusing the request: %s", exc)
            return None
        answer = _TokenAnswer(_reviewed_user(review))
        self._cache.put(key, answer, self._settings.authentication_cache_ttl_seconds)
        return answer.user


# --- Request attributes -----------------------------------------------------------------------------------

_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}
# nodeAuthorizerAttributesGetter: these path prefixes get their own subresource; everything else is "proxy".
_SUBRESOURCE_PREFIXES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"),
                         ("/checkpoint", "checkpoint"))
# Routes that run a command or open a socket in a pod. A WebSocket upgrade arrives as GET, which the kubelet maps
# to `get`, so read-only nodes/proxy access could open a shell; vnode asks for `create` whatever the method.
_STREAMING_ROOTS = frozenset({"exec", "attach", "portForward", "run"})


def _is_subpath(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _root(path: str) -> str:
    return next((segment for segment in path.split("/") if segment), "")


def request_attributes(method: str, path: str) -> tuple[str, str]:
    """(verb, subresource) of a kubelet API request for a SubjectAccessReview on nodes/<subresource>.

    `path` is the percent-decoded request path, as routed. Upstream gives HEAD and unknown methods verb '';
    vnode serves HEAD with the GET handlers, so HEAD is `get` here. `/cost` and other vnode routes are `proxy`.
    """
    # Judge the streaming roots on the path as given and with dot segments resolved: either one naming a
    # stream is enough to demand `create` on nodes/proxy.
    if {_root(path), _root(posixpath.normpath(path or "/"))} & _STREAMING_ROOTS:
        return "create", "proxy"
    subresource = next((sub for prefix, sub in _SUBRESOURCE_PREFIXES if _is_subpath(path, prefix)), "proxy")
    return _METHOD_VERBS.get(method, ""), subresource


# --- Authorization ----------------------------------------------------------------------------------------


class KubeletAuthorizer:
    """SubjectAccessReview on nodes/<subresource> of this node, answers cached (allow and deny apart)."""

    def __init__(self, settings: KubeletSettings, client: KubeClient | None, *, node_name: str,
                 clock: Clock) -> None:
        self._settings = settings
        self._client = client
        self._node_name = node_name
        self._cache: _ExpiringCache[str, Decision] = _ExpiringCache(clock, DECISION_CACHE_ENTRIES)

    async def authorize(self, user: UserInfo, verb: str, subresource: str) -> Decision:
        if self._settings.authorization_mode == "AlwaysAllow":
            return Decision(True, "AlwaysAllow")
        if self._client is None:
            return Decision(False, "no API client to send a SubjectAccessReview with")
        spec: dict[str, Any] = {
            "user": user.name, "groups": list(user.groups),
            # authorizer.AttributesRecord of the kubelet: core group, version v1, cluster-scoped nodes/<name>.
            "resourceAttributes": {"verb": verb, "version": "v1", "resource": "nodes", "subresource": subresource,
                                   "name": self._node_name},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {key: list(values) for key, values in user.extra.items()}
        key = json.dumps(spec, sort_keys=True)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        body = {"apiVersion": paths.AUTHORIZATION_V1, "kind": "SubjectAccessReview", "spec": spec}
        try:
            review = await self._client.create(paths.subjectaccessreviews_path(), body)
        except VnodeError as exc:
            # Fail closed, and do not cache: the next request asks again.
            return Decision(False, f"SubjectAccessReview failed: {exc}")
        status = review.get("status") or {}
        allowed = status.get("allowed") is True and status.get("denied") is not True
        decision = Decision(allowed, str(status.get("reason") or status.get("evaluationError") or ""))
        ttl = self._settings.authorized_cache_ttl_seconds if allowed else \
            self._settings.unauthorized_cache_ttl_seconds
        self._cache.put(key, decision, ttl)
        return decision


# --- Refusal bodies ---------------------------------------------------------------------------------------


def unauthorized_body() -> bytes:
    """The kubelet's 401 body (text/plain, no trailing newline)."""
    return b"Unauthorized"


def forbidden_body(user: str, verb: str, subresource: str) -> bytes:
    """The kubelet's 403 body: Go's `%v` of the subresource list, and a trailing newline (server.go)."""
    return f"Forbidden (user={user}, verb={verb}, resource=nodes, subresource(s)=[{subresource}])\n".encode()
