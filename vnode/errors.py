"""The error hierarchy shared by every layer.

A leaf module: it imports nothing from vnode. Edges (API client, providers, HTTP handlers) translate library
exceptions into these and chain the cause; work queues retry only `Retryable` errors.
"""

from __future__ import annotations


class VnodeError(Exception):
    """Base of every error vnode raises on purpose."""


# Permanent: retrying cannot help.


class NotFound(VnodeError):
    """The object or backend resource does not exist."""


class InvalidPod(VnodeError):
    """A pod spec vnode cannot run; `field` names the offending field path (e.g. `spec.containers[0].image`)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotSupported(VnodeError):
    """A capability this backend does not have (HTTP 501)."""


class ConfigError(VnodeError):
    """Configuration that cannot be used; the message names the option."""


class Conflict(VnodeError):
    """A write lost a race (stale resourceVersion, existing name, failed precondition)."""


class Forbidden(VnodeError):
    """The API server refused the request for lack of permission (HTTP 403)."""


class Invalid(VnodeError):
    """The API server rejected an object as invalid (HTTP 400/422); retrying the same request cannot help."""


class Expired(VnodeError):
    """A resourceVersion is too old to watch or list from (HTTP 410): relist."""


# Retryable: the same call may succeed later.


class Retryable(VnodeError):
    """A transient failure; the caller should retry with backoff."""


class Throttled(Retryable):
    """The backend asked us to slow down; `retry_after_seconds` is its hint, if it gave one."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class BackendUnavailable(Retryable):
    """The backend cannot be reached or answers with server errors."""


class ApiServerUnavailable(Retryable):
    """The Kubernetes API server cannot be reached or answered with a server error."""
