"""Mapping API server failures (HTTP codes, Status bodies, watch ERROR frames) to vnode errors."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from vnode import errors
from vnode.kube.apierrors import error_for_status, retry_after_seconds, status_reason


def status(code: int, reason: str, message: str, **details: object) -> bytes:
    body: dict[str, object] = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                               "reason": reason, "message": message}
    if details:
        body["details"] = details
    return json.dumps(body).encode()


@pytest.mark.parametrize(("code", "reason", "expected"), [
    (404, "NotFound", errors.NotFound),
    (409, "Conflict", errors.Conflict),
    (409, "AlreadyExists", errors.Conflict),
    (403, "Forbidden", errors.Forbidden),
    (401, "Unauthorized", errors.Forbidden),
    (400, "BadRequest", errors.Invalid),
    (422, "Invalid", errors.Invalid),
    (415, "UnsupportedMediaType", errors.Invalid),
    (410, "Expired", errors.Expired),
    (410, "Gone", errors.Expired),
    (429, "TooManyRequests", errors.Throttled),
    (500, "InternalError", errors.ApiServerUnavailable),
    (503, "ServiceUnavailable", errors.ApiServerUnavailable),
    (504, "Timeout", errors.ApiServerUnavailable),
])
def test_each_code_maps_to_its_error_class(code: int, reason: str, expected: type[errors.VnodeError]) -> None:
    """Every HTTP failure code becomes the vnode error the table names."""
    assert type(error_for_status(code, status(code, reason, "boom"))) is expected


def test_the_status_message_is_the_error_message_and_the_cause_is_chained() -> None:
    """The Status message is kept, prefixed with what was asked; the cause carries code, reason and body."""
    body = status(404, "NotFound", 'pods "p" not found')
    error = error_for_status(404, body, what="GET /api/v1/namespaces/d/pods/p")
    assert str(error) == 'GET /api/v1/namespaces/d/pods/p: pods "p" not found'
    assert isinstance(error.__cause__, ApiException)
    assert (error.__cause__.status, error.__cause__.reason, error.__cause__.body) == (404, "NotFound", body)
    assert error.__suppress_context__


def test_status_reason_tells_already_exists_from_conflict() -> None:
    """Both are 409; the Status reason behind the error still says which."""
    assert status_reason(error_for_status(409, status(409, "AlreadyExists", "x"))) == "AlreadyExists"
    assert status_reason(error_for_status(409, status(409, "Conflict", "x"))) == "Conflict"


def test_a_body_that_is_not_a_status_falls_back_to_the_http_reason() -> None:
    """A proxy's HTML error page still yields a useful message."""
    error = error_for_status(502, b"<html>bad gateway</html>", reason_phrase="Bad Gateway")
    assert isinstance(error, errors.ApiServerUnavailable)
    assert str(error) == "HTTP 502 Bad Gateway"


def test_a_watch_error_frame_status_maps_like_a_response() -> None:
    """A decoded Status from a watch ERROR frame maps by its code (410 is Expired)."""
    frame = {"kind": "Status", "apiVersion": "v1", "code": 410, "reason": "Expired", "message": "too old"}
    error = error_for_status(410, frame)
    assert isinstance(error, errors.Expired)
    assert str(error) == "too old"


def test_429_takes_retry_after_from_the_header() -> None:
    """Throttled carries the Retry-After seconds the server asked for."""
    error = error_for_status(429, status(429, "TooManyRequests", "slow down"), retry_after="3")
    assert isinstance(error, errors.Throttled)
    assert error.retry_after_seconds == 3.0


def test_429_without_a_header_uses_the_status_hint() -> None:
    """Without Retry-After, Status details.retryAfterSeconds is the hint; without either there is none."""
    hinted = status(429, "TooManyRequests", "slow down", retryAfterSeconds=2)
    assert retry_after_seconds(None, json.loads(hinted)) == 2.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", None) is None
    plain = error_for_status(429, status(429, "TooManyRequests", "slow down"))
    assert isinstance(plain, errors.Throttled)
    assert plain.retry_after_seconds is None
