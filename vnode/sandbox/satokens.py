"""Service account tokens the sandbox issues through TokenRequest (`serviceaccounts/{name}/token`).

Tokens are opaque random strings remembered with their identity (`system:serviceaccount:<ns>:<name>`), audiences
and expiry; the authenticator accepts them until they expire. kube-apiserver issues signed JWTs instead; nothing in
vnode parses the token, so an opaque one carries the same contract.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vnode.clock import Clock, rfc3339
from vnode.sandbox import status
from vnode.sandbox.auth import UserInfo

DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600  # TokenRequest validation: at least 10 minutes
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class _Issued:
    user: UserInfo
    audiences: tuple[str, ...]
    expires: datetime


class ServiceAccountTokens:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._issued: dict[str, _Issued] = {}

    def lookup(self, token: str) -> UserInfo | None:
        issued = self._issued.get(token)
        if issued is None:
            return None
        if issued.expires <= self._clock.now():
            del self._issued[token]
            return None
        return issued.user

    def issue(self, namespace: str, account: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """Answer a TokenRequest for `account` (the stored ServiceAccount)."""
        spec = request.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS)
        if seconds < MIN_EXPIRATION_SECONDS:
            raise status.invalid("TokenRequest", "authentication.k8s.io", account["metadata"]["name"], [(
                "spec.expirationSeconds", "FieldValueInvalid",
                f"Invalid value: {seconds}: may not specify a duration less than 10 minutes")])
        name = account["metadata"]["name"]
        user = UserInfo(f"system:serviceaccount:{namespace}:{name}", account["metadata"].get("uid", ""),
                        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"))
        expires = self._clock.now() + timedelta(seconds=seconds)
        token = secrets.token_urlsafe(32)
        audiences = tuple(spec.get("audiences") or [DEFAULT_AUDIENCE])
        self._issued[token] = _Issued(user, audiences, expires)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace,
                         "creationTimestamp": rfc3339(self._clock.now())},
            "spec": {**spec, "audiences": list(audiences), "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": rfc3339(expires)},
        }
