"""The framing vnode assumes on ECI's exec WebSocket: one channel byte, then the payload; the exit status on channel 3.

No Alibaba page describes these frames (eci-wire.md §1); every assumption about them lives here and in
`exec_bridge`, so a correction touches these two modules only. The assumptions, each with its evidence:
- Every message is BINARY: `[channel] + payload` [obs: two clients drop byte 0 of each message]. A TEXT message
  is read the same way, as its UTF-8 bytes (a Kubernetes server does so too); a text/base64 form is [unverified].
- Channels are Kubernetes' remote-command channels: 0 stdin, 1 stdout, 2 stderr, 3 status, 4 resize [obs for 0-2;
  inferred from ECI's kubelet-like backend for 3 and 4].
- The subprotocols are Kubernetes' too (`channel.k8s.io` = no subprotocol, `v4.channel.k8s.io`,
  `v5.channel.k8s.io`). Whether ECI's gateway forwards an offer is [unverified]: the bridge falls back to none.
- Status: under v4/v5 a metav1.Status JSON, `Success` or `Failure` with reason `NonZeroExitCode` and a cause
  `{"reason": "ExitCode", "message": "<n>"}` (Go's StatusCause.Type is "reason" in JSON); under v1 only text, only
  on failure ("command terminated with non-zero exit code: ..."). Nobody has seen ECI send either [unverified].
- Resize: channel 4 carrying JSON `{"Width": w, "Height": h}` [unverified: no ECI client sends it].
- Half-closing stdin: only v5 can, with the message `[255, 0]`; v1-v4 have no way to [Kubernetes].
It must not do I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from vnode.providers.streams import TerminalSize

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255  # v5: [255, channel] half-closes `channel`

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V1 = "channel.k8s.io"
_LAST_NUMBER = re.compile(r"(\d+)\D*$")


class FrameError(ValueError):
    """A message no channel protocol produces (it has no channel byte)."""


@dataclass(frozen=True)
class ExitStatus:
    """What the status channel said: an exit code, or a failure that is not one (`message`, HTTP-like `code`)."""

    exit_code: int | None
    message: str = ""
    code: int | None = None


def encode(channel: int, payload: bytes) -> bytes:
    if not 0 <= channel <= 255:
        raise ValueError(f"channel {channel} does not fit the channel byte")
    return bytes((channel,)) + payload


def decode(message: bytes | str) -> tuple[int, bytes]:
    data = message.encode() if isinstance(message, str) else bytes(message)
    if not data:
        raise FrameError("empty message: no channel byte")
    return data[0], data[1:]


def close_stdin(protocol: str) -> bytes | None:
    """The message that half-closes stdin, or None when `protocol` has none (everything before v5)."""
    return bytes((CLOSE_SIGNAL, STDIN)) if protocol == V5 else None


def resize(size: TerminalSize) -> bytes:
    return encode(RESIZE, json.dumps({"Width": size.width, "Height": size.height}).encode())


def is_structured(protocol: str) -> bool:
    """v4 and v5 send a metav1.Status JSON on the status channel; v1 (and no subprotocol) plain text."""
    return protocol in (V4, V5)


def parse_status(protocol: str, body: bytes) -> ExitStatus:
    """The status channel's content at the end of a session (non-empty)."""
    if is_structured(protocol):
        try:
            status = json.loads(body)
        except ValueError:
            status = None
        if isinstance(status, dict):
            return _from_status(status)
    # v1 text, or a v4 body that is not JSON: the number in it, else a failure without a code (exit 1).
    text = body.decode(errors="replace").strip()
    number = _LAST_NUMBER.search(text)
    return ExitStatus(int(number.group(1)) if number else 1, text)


def _from_status(status: dict[str, object]) -> ExitStatus:
    if status.get("status") == "Success":
        return ExitStatus(0)
    message = str(status.get("message") or "")
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    if status.get("reason") == "NonZeroExitCode" and isinstance(causes, list):
        for cause in causes:
            # Go's StatusCause{Type: "ExitCode"} is {"reason": "ExitCode"} in JSON.
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return ExitStatus(int(str(cause.get("message"))), message)
                except ValueError:
                    break
        return ExitStatus(1, message)
    code = status.get("code")
    return ExitStatus(None, message or "the exec session failed", code if isinstance(code, int) else None)
