"""The channel framing of every Kubernetes WebSocket subprotocol, as upstream wsstream reads and writes it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnode.kubelet.channels import CLOSE_SIGNAL, V1, V4, V5
from vnode.kubelet.ws_codec import (
    REMOTE_COMMAND_PROTOCOLS,
    V1_BASE64,
    V4_BASE64,
    ChannelProtocolError,
    closed_channel,
    decode,
    encode,
    is_base64,
)

BINARY = ["", V1, V4, V5]
BASE64 = [V1_BASE64, V4_BASE64]
ALL = BINARY + BASE64


def test_server_prefers_v5_then_v4_then_the_unversioned_protocols() -> None:
    assert REMOTE_COMMAND_PROTOCOLS == (V5, V4, V4_BASE64, V1, V1_BASE64)


@pytest.mark.parametrize(("protocol", "expected"), [(p, False) for p in BINARY] + [(p, True) for p in BASE64])
def test_is_base64(protocol: str, expected: bool) -> None:
    assert is_base64(protocol) is expected


def test_no_subprotocol_frames_as_binary() -> None:
    assert encode(None, 1, b"hi") == b"\x01hi"


def test_unknown_protocol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a channel WebSocket protocol"):
        encode("v3.channel.k8s.io", 1, b"")


@pytest.mark.parametrize("protocol", ALL)
@pytest.mark.parametrize("channel", [0, 1, 2, 3, 4, 11])
@pytest.mark.parametrize("payload", [b"", b"hello\n", bytes(range(256)), b"\xff" * 40000])
def test_round_trip(protocol: str, channel: int, payload: bytes) -> None:
    assert decode(protocol, encode(protocol, channel, payload)) == (channel, payload)


@pytest.mark.parametrize("protocol", BINARY)
def test_binary_message_is_channel_byte_then_payload(protocol: str) -> None:
    assert encode(protocol, 2, b"oops") == b"\x02oops"


@pytest.mark.parametrize("protocol", BASE64)
def test_base64_message_is_channel_digit_then_base64_text(protocol: str) -> None:
    # wsstream's own example: "\n" on stdout is "1Cg==".
    assert encode(protocol, 1, b"\n") == "1Cg=="


@pytest.mark.parametrize("protocol", BASE64)
def test_ready_message_in_base64_is_the_bare_digit(protocol: str) -> None:
    assert encode(protocol, 1, b"") == "1"


@pytest.mark.parametrize("protocol", BINARY)
def test_text_frame_on_binary_protocol_is_read_as_its_bytes(protocol: str) -> None:
    # The python `kubernetes` client writes str stdin as a text frame: chr(0) + data.
    assert decode(protocol, "\x00ls -l\n") == (0, b"ls -l\n")


@pytest.mark.parametrize("protocol", BASE64)
def test_binary_frame_on_base64_protocol_is_read_as_base64(protocol: str) -> None:
    assert decode(protocol, b"0Zm9vCg==") == (0, b"foo\n")


@pytest.mark.parametrize("protocol", BASE64)
def test_base64_line_breaks_are_skipped_like_go(protocol: str) -> None:
    assert decode(protocol, "0Zm9v\r\nCg==") == (0, b"foo\n")


@pytest.mark.parametrize("protocol", ALL)
@pytest.mark.parametrize("message", ["", b""])
def test_empty_message_is_rejected(protocol: str, message: str | bytes) -> None:
    with pytest.raises(ChannelProtocolError):
        decode(protocol, message)


@pytest.mark.parametrize("protocol", BASE64)
@pytest.mark.parametrize("message", ["0Zm9v!", "0Zm9", "0é", "0Zm9vCg"])
def test_bad_base64_is_rejected(protocol: str, message: str) -> None:
    with pytest.raises(ChannelProtocolError, match="base64"):
        decode(protocol, message)


@pytest.mark.parametrize("protocol", BASE64)
@pytest.mark.parametrize("message", ["/Zm9v", "\x00Zm9v", "éZm9v"])
def test_base64_channel_character_out_of_range_is_rejected(protocol: str, message: str) -> None:
    with pytest.raises(ChannelProtocolError, match="channel character"):
        decode(protocol, message)


def test_base64_channel_beyond_ascii_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="channel"):
        encode(V4_BASE64, 80, b"")


def test_v5_close_signal_names_the_closed_channel() -> None:
    channel, payload = decode(V5, bytes((CLOSE_SIGNAL, 0)))
    assert closed_channel(V5, channel, payload) == 0


@pytest.mark.parametrize("message", [bytes((CLOSE_SIGNAL,)), bytes((CLOSE_SIGNAL, 0, 1))])
def test_v5_close_signal_with_wrong_length_is_rejected(message: bytes) -> None:
    with pytest.raises(ChannelProtocolError, match="close signal"):
        decode(V5, message)


@pytest.mark.parametrize("protocol", ["", V1, V4])
def test_channel_255_before_v5_is_plain_data(protocol: str) -> None:
    # Only v5 has the close signal; for older protocols 255 is a channel no session opens (the caller drops it).
    channel, payload = decode(protocol, bytes((CLOSE_SIGNAL, 0, 1, 2)))
    assert (channel, payload, closed_channel(protocol, channel, payload)) == (255, b"\x00\x01\x02", None)


def test_ordinary_message_closes_nothing() -> None:
    assert closed_channel(V5, 0, b"x") is None


@given(protocol=st.sampled_from(ALL), message=st.one_of(st.text(), st.binary()))
def test_any_message_decodes_or_raises_channel_protocol_error(protocol: str, message: str | bytes) -> None:
    try:
        channel, payload = decode(protocol, message)
    except ChannelProtocolError:
        return
    assert 0 <= channel <= 255
    assert isinstance(payload, bytes)
