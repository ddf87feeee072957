"""Alibaba Cloud RPC (POP) signature version 1.0, checked as aliyun-python-sdk-core computes it.

The client signs every parameter it sends (query string, plus form body on POST) except `Signature`: sort by key,
percent-encode keys and values (RFC 3986: space → %20, `*` → %2A, `~` kept), join as `k=v&...`, and sign
`METHOD&%2F&` + percent-encode(that string) with HMAC-SHA1 keyed by `secret + "&"`, base64. This module owns that
computation, the replay check on `SignatureNonce` and the timestamp window; it must not know about HTTP servers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote

from vnode.clock import Clock
from vnode.sandbox.eci.errors import EciApiError, missing

SIGNED_FIELDS = ("AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp")


def percent_encode(text: str) -> str:
    # Only the RFC 3986 unreserved set (letters, digits, -_.~) stays literal; UTF-8 bytes are %XX.
    return quote(text, safe="~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
                         if k != "Signature")
    return f"{method.upper()}&%2F&{percent_encode(canonical)}"


def sign(text: str, secret: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class SignatureVerifier:
    """Verifies signed requests for a fixed set of AccessKey pairs; remembers nonces for `nonce_ttl_seconds`."""

    def __init__(self, credentials: Mapping[str, str], clock: Clock, *, max_skew_seconds: float = 900.0,
                 nonce_ttl_seconds: float = 900.0) -> None:
        self._credentials = dict(credentials)
        self._clock = clock
        self._max_skew = max_skew_seconds
        self._nonce_ttl = nonce_ttl_seconds
        self._nonces: set[str] = set()
        self._nonce_expiry: deque[tuple[float, str]] = deque()  # in expiry order: the TTL is the same for all

    def verify(self, method: str, params: Mapping[str, str]) -> str:
        """The caller's AccessKeyId, or `EciApiError` with the gateway's code."""
        for name in SIGNED_FIELDS:
            if name not in params:
                raise missing(name)
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise EciApiError("InvalidSignatureMethod", "Specified signature method or version is not supported: "
                              f"{params['SignatureMethod']} {params['SignatureVersion']}.")
        key_id = params["AccessKeyId"]
        secret = self._credentials.get(key_id)
        if secret is None:
            raise EciApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        self._check_timestamp(params["Timestamp"])
        expected_text = string_to_sign(method, params)
        if not hmac.compare_digest(sign(expected_text, secret), params["Signature"]):
            # The real gateway echoes its string-to-sign; aliyun-python-sdk-core compares it with its own and, when
            # they agree (only the secret is wrong), reports InvalidAccessKeySecret instead.
            raise EciApiError("SignatureDoesNotMatch", "Specified signature is not matched with our calculation. "
                              f"server string to sign is:{expected_text}")
        self._use_nonce(params["SignatureNonce"])
        return key_id

    def _check_timestamp(self, text: str) -> None:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise EciApiError("InvalidTimeStamp.Format", "Specified time stamp or date value is not well "
                              "formatted.") from exc
        if moment.tzinfo is None:
            raise EciApiError("InvalidTimeStamp.Format", "Specified time stamp must be in UTC (ISO 8601 with Z).")
        if abs((self._clock.now() - moment).total_seconds()) > self._max_skew:
            raise EciApiError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")

    def _use_nonce(self, nonce: str) -> None:
        now = self._clock.monotonic()
        while self._nonce_expiry and self._nonce_expiry[0][0] <= now:
            self._nonces.discard(self._nonce_expiry.popleft()[1])
        if nonce in self._nonces:
            raise EciApiError("SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(nonce)
        self._nonce_expiry.append((now + self._nonce_ttl, nonce))
