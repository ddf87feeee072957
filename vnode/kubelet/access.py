"""One gate in front of every kubelet API request, aiohttp-served or raw (SPDY): authenticate, then authorize.

Refusals carry the kubelet's own status codes and bodies (401 `Unauthorized`, 403 `Forbidden (user=..., ...)`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vnode.kubelet.auth import (
    KubeletAuthenticator,
    KubeletAuthorizer,
    forbidden_body,
    request_attributes,
    unauthorized_body,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class AccessGate:
    def __init__(self, authenticator: KubeletAuthenticator, authorizer: KubeletAuthorizer) -> None:
        self._authenticator = authenticator
        self._authorizer = authorizer

    async def check(self, method: str, path: str, headers: Mapping[str, str],
                    peer_cert: dict[str, Any] | None) -> Refusal | None:
        """None when the request may go on, else how to refuse it."""
        user = await self._authenticator.authenticate(headers, peer_cert)
        if user is None:
            return Refusal(401, unauthorized_body())
        verb, subresource = request_attributes(method, path)
        decision = await self._authorizer.authorize(user, verb, subresource)
        if not decision.allowed:
            log.info("kubelet API: %s %s refused for %s (%s)", method, path, user.name, decision.reason)
            return Refusal(403, forbidden_body(user.name, verb, subresource))
        return None
