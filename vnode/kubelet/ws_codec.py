"""The message framing of the Kubernetes WebSocket channel protocols (remote command and port-forward).

Owns only the bytes of one message: which channel it belongs to and its payload, in the binary
(`channel.k8s.io`, `v4.channel.k8s.io`, `v5.channel.k8s.io`, no subprotocol) and base64 (`base64.channel.k8s.io`,
`v4.base64.channel.k8s.io`) forms. It does no I/O and knows nothing of sessions or which channels a session uses.

Upstream facts (apimachinery `pkg/util/httpstream/wsstream/conn.go`, now `k8s.io/streaming`):
- The server reads every message as bytes whatever its frame type (golang.org/x/net/websocket `Message.Receive`),
  so a text frame on a binary protocol is accepted; the python `kubernetes` client sends `str` stdin that way.
  The codec, not the frame type, decides: binary is `[channel] + payload`; base64 is `'0'+channel` then base64.
- Empty messages are skipped, and data for a channel the session does not read is dropped; both are left to the
  caller (`decode` rejects an empty message so a caller cannot mistake it for data).
- v5 only: `[255, channel]` from the client half-closes `channel`; any other length is a protocol error that ends
  the session. For older protocols 255 is just a channel number no session uses.
Where we are stricter than upstream: a base64 payload that does not decode (upstream drops that one frame) and a
base64 channel character outside '0'..DEL (upstream wraps the byte around) are `ChannelProtocolError`s.
"""

from __future__ import annotations

import base64
import binascii

from vnode.kubelet.channels import CLOSE_SIGNAL, V1, V4, V5

V4_BASE64 = "v4.base64.channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
# The server's preference order for exec/attach; "" (no subprotocol offered) means V1 binary framing.
REMOTE_COMMAND_PROTOCOLS: tuple[str, ...] = (V5, V4, V4_BASE64, V1, V1_BASE64)
_BASE64_PROTOCOLS = frozenset({V4_BASE64, V1_BASE64})
_KNOWN_PROTOCOLS = frozenset({"", *REMOTE_COMMAND_PROTOCOLS})
# A base64 channel is one ASCII character '0'+channel; beyond DEL it would not be one byte on the wire.
MAX_BASE64_CHANNEL = 0x7F - ord("0")


class ChannelProtocolError(ValueError):
    """A message that no channel protocol can carry: the session that received it is broken."""


def _check(protocol: str | None) -> str:
    name = protocol or ""
    if name not in _KNOWN_PROTOCOLS:
        raise ValueError(f"not a channel WebSocket protocol: {name!r}")
    return name


def is_base64(protocol: str | None) -> bool:
    """Whether `protocol` carries base64 text messages (else one channel byte plus raw bytes)."""
    return _check(protocol) in _BASE64_PROTOCOLS


def supports_close_signal(protocol: str | None) -> bool:
    """Only v5 lets the client half-close a channel with `[255, channel]`."""
    return _check(protocol) == V5


def encode(protocol: str | None, channel: int, payload: bytes) -> str | bytes:
    """One message carrying `payload` on `channel`: `str` for base64 protocols (send as text), else `bytes`."""
    if is_base64(protocol):
        if not 0 <= channel <= MAX_BASE64_CHANNEL:
            raise ValueError(f"channel {channel} cannot be written as one base64 channel character")
        return chr(ord("0") + channel) + base64.b64encode(payload).decode("ascii")
    if not 0 <= channel <= 255:
        raise ValueError(f"channel {channel} does not fit the channel byte")
    return bytes((channel,)) + payload


def decode(protocol: str | None, message: str | bytes) -> tuple[int, bytes]:
    """The channel and payload of a received message, text or binary frame alike.

    A v5 close signal decodes to `(CLOSE_SIGNAL, bytes([channel]))`; see `closed_channel`.
    Raises ChannelProtocolError for a message no sender following the protocol produces.
    """
    name = _check(protocol)
    if isinstance(message, str):
        try:
            data = message.encode("utf-8")
        except UnicodeEncodeError:
            raise ChannelProtocolError("text message is not valid UTF-8") from None
    else:
        data = bytes(message)
    if not data:
        raise ChannelProtocolError("empty message: no channel byte")
    if name in _BASE64_PROTOCOLS:
        channel = data[0] - ord("0")
        if not 0 <= channel <= MAX_BASE64_CHANNEL:
            raise ChannelProtocolError(f"invalid base64 channel character {data[:1]!r}")
        # Go's base64.StdEncoding skips CR and LF; everything else must be the padded standard alphabet.
        text = data[1:].replace(b"\r", b"").replace(b"\n", b"")
        try:
            return channel, base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ChannelProtocolError(f"channel {channel}: payload is not valid base64 ({exc})") from None
    if name == V5 and data[0] == CLOSE_SIGNAL and len(data) != 2:
        raise ChannelProtocolError(f"close signal must name exactly one channel, got {len(data) - 1} bytes")
    return data[0], data[1:]


def closed_channel(protocol: str | None, channel: int, payload: bytes) -> int | None:
    """The channel a decoded message half-closes (v5 close signal), or None for an ordinary data message."""
    if channel == CLOSE_SIGNAL and supports_close_signal(protocol) and len(payload) == 1:
        return payload[0]
    return None
