"""What every remote-command wire adapter (SPDY/3.1, WebSocket variants) offers the session logic.

An adapter turns one upgraded connection into `CommandChannels`: the `StreamIO` a provider works with, a way to
end the session with its exit status in the negotiated protocol's form, and a signal that the client has gone.
The Status bodies follow kube-apiserver/kubelet byte for byte where clients parse them (client-go, fabric8).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from vnode.providers.streams import StreamIO

# Remote command protocol versions (k8s.io/apimachinery/pkg/util/remotecommand), newest first.
V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
SPDY_VERSIONS: tuple[str, ...] = (V5, V4, V3, V2, V1)
PORT_FORWARD_V1 = "portforward.k8s.io"

# WebSocket channel numbers (the first byte of every message).
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5 only: [255, channel] half-closes `channel`


def status_json_versions(protocol: str) -> bool:
    """v4 and v5 carry a metav1.Status JSON on the error stream; v1 to v3 carry plain text, only on failure."""
    return protocol.startswith(("v4.", "v5."))


class CommandChannels(Protocol):
    @property
    def io(self) -> StreamIO: ...

    async def finish(self, status: bytes | None) -> None:
        """End the session: end stdout/stderr, send `status` (if any) on the error stream, close cleanly."""
        ...

    async def client_gone(self) -> None:
        """Return once the client disconnected, the session broke, or it stayed idle past its timeout."""
        ...


def _status(body: dict[str, Any]) -> bytes:
    return json.dumps({"metadata": {}, **body}, separators=(",", ":")).encode()


def exit_status(protocol: str, exit_code: int) -> bytes | None:
    """The error-stream body for a command that ended with `exit_code` (None: send nothing)."""
    if not status_json_versions(protocol):
        return None if exit_code == 0 else f"command terminated with non-zero exit code: {exit_code}".encode()
    if exit_code == 0:
        return _status({"status": "Success"})
    return _status({
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {exit_code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(exit_code)}]},
    })


def error_status(protocol: str, message: str, *, code: int = 500, reason: str = "InternalError") -> bytes:
    """The error-stream body for a session that failed before or instead of an exit code."""
    if not status_json_versions(protocol):
        return message.encode()
    return _status({"status": "Failure", "message": message, "reason": reason, "code": code})
