"""Translating API server failures into `vnode.errors`: one mapping for HTTP responses and watch ERROR frames.

Owns the code → error table and the `metav1.Status` parsing. The library-shaped cause (a kubernetes_asyncio
`ApiException` carrying the code, the Status reason and the raw body) is chained on every error so logs keep the
detail. It must not retry or log: callers decide what a failure means for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from vnode import errors


def parse_status(body: bytes | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The `metav1.Status` in a response body or watch frame, or None when the body is not one."""
    if body is None:
        return None
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, Mapping) and body.get("kind") == "Status":
        return dict(body)
    return None


def retry_after_seconds(header: str | None, status: Mapping[str, Any] | None) -> float | None:
    """A 429's Retry-After header (delta-seconds, as kube-apiserver sends it), else Status details.retryAfterSeconds."""
    if header:
        try:
            return max(0.0, float(header.strip()))
        except ValueError:
            pass  # an HTTP-date: kube-apiserver never sends one, so fall through to the Status hint
    details = (status or {}).get("details") or {}
    hint = details.get("retryAfterSeconds")
    return float(hint) if isinstance(hint, int | float) and hint > 0 else None


def error_for_status(code: int, body: bytes | Mapping[str, Any] | None, *, retry_after: str | None = None,
                     reason_phrase: str = "", what: str = "") -> errors.VnodeError:
    """The vnode error for an HTTP failure (or a watch ERROR frame's Status), with an `ApiException` as its cause."""
    status = parse_status(body)
    reason = str((status or {}).get("reason") or reason_phrase or "")
    message = str((status or {}).get("message") or f"HTTP {code} {reason_phrase}".strip())
    if what:
        message = f"{what}: {message}"
    cause = ApiException(status=code, reason=reason)
    cause.body = bytes(body) if isinstance(body, bytes | bytearray) else json.dumps(body).encode() if body else None
    error: errors.VnodeError
    if code == 404:
        error = errors.NotFound(message)
    elif code == 409:
        # Both AlreadyExists and Conflict (stale resourceVersion, failed precondition) are 409s.
        error = errors.Conflict(message)
    elif code in (401, 403):
        # 401 is a credential the server no longer accepts; retrying with the same one cannot help either.
        error = errors.Forbidden(message)
    elif code == 410:
        # Expired / Gone: the resourceVersion left the watch window or the continue token aged out.
        error = errors.Expired(message)
    elif code == 429:
        error = errors.Throttled(message, retry_after_seconds=retry_after_seconds(retry_after, status))
    elif code >= 500 or code < 400:
        error = errors.ApiServerUnavailable(message)
    else:
        # 400 BadRequest, 422 Invalid, and the rest of 4xx (405, 406, 413, 415): the request itself is wrong.
        error = errors.Invalid(message)
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error


def status_reason(error: BaseException) -> str | None:
    """The Status reason behind an error from this module (e.g. `AlreadyExists` vs `Conflict`), if it has one."""
    cause = error.__cause__
    if isinstance(cause, ApiException) and cause.reason:
        return str(cause.reason)
    return None
