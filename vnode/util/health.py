"""BackendHealth: whether the backend answers, as last checked, shared between the parts that care.

The node agent sets it from `provider.ping()`; the pod controller reads it so that, while the backend cannot be
reached, it does not claim pod states it cannot see, and re-syncs every pod when the backend comes back.
"""

from __future__ import annotations

from collections.abc import Callable


class BackendHealth:
    def __init__(self) -> None:
        self.ok = True
        self.error = ""
        self._listeners: list[Callable[[bool], None]] = []

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(ok)` on every change (synchronously, so it must not block)."""
        self._listeners.append(listener)

    def set(self, ok: bool, error: str = "") -> None:
        self.error = "" if ok else error
        if ok == self.ok:
            return
        self.ok = ok
        for listener in self._listeners:
            listener(ok)
