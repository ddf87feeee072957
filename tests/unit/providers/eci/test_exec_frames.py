"""The framing vnode assumes on ECI's exec WebSocket: channel bytes, exit statuses, resizes and stdin's end."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnode.kubelet.channels import error_status, exit_status
from vnode.providers.eci import exec_frames as frames
from vnode.providers.streams import TerminalSize


@given(st.integers(0, 255), st.binary())
def test_a_message_decodes_to_its_channel_and_payload(channel: int, payload: bytes) -> None:
    assert frames.decode(frames.encode(channel, payload)) == (channel, payload)


def test_a_text_message_is_read_as_its_bytes() -> None:
    assert frames.decode("\x01hi") == (1, b"hi")


def test_a_message_without_a_channel_byte_is_refused() -> None:
    with pytest.raises(frames.FrameError):
        frames.decode(b"")


@given(st.sampled_from([frames.V1, frames.V4, frames.V5]), st.integers(1, 255))
def test_a_kubelet_failure_status_gives_back_the_exit_code(protocol: str, code: int) -> None:
    body = exit_status(protocol, code)  # the kubelet side's rendering, written independently
    assert body is not None
    assert frames.parse_status(protocol, body).exit_code == code


@pytest.mark.parametrize("protocol", [frames.V4, frames.V5])
def test_a_structured_success_is_exit_zero(protocol: str) -> None:
    body = exit_status(protocol, 0)
    assert body is not None and frames.parse_status(protocol, body).exit_code == 0


def test_upstream_kubelet_text_gives_the_last_number() -> None:
    text = b"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 42"
    assert frames.parse_status(frames.V1, text).exit_code == 42


def test_v1_text_without_a_number_is_exit_one() -> None:
    status = frames.parse_status(frames.V1, b"container not found")
    assert (status.exit_code, status.message) == (1, "container not found")


def test_a_v4_failure_that_is_not_an_exit_code_keeps_its_message_and_code() -> None:
    status = frames.parse_status(frames.V4, error_status(frames.V4, "no such container", code=404, reason="NotFound"))
    assert (status.exit_code, status.message, status.code) == (None, "no such container", 404)


def test_a_v4_body_that_is_not_json_is_read_as_text() -> None:
    assert frames.parse_status(frames.V4, b"exit code 9").exit_code == 9


def test_only_v5_can_close_stdin() -> None:
    assert frames.close_stdin(frames.V5) == b"\xff\x00"
    assert frames.close_stdin(frames.V4) is None and frames.close_stdin(frames.V1) is None


def test_resize_is_channel_4_json_in_kubernetes_field_names() -> None:
    channel, payload = frames.decode(frames.resize(TerminalSize(width=120, height=40)))
    assert (channel, json.loads(payload)) == (frames.RESIZE, {"Width": 120, "Height": 40})
