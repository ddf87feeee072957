"""SPDY/3.1 framing: the header dictionary, frame round trips through one encoder and one reader, the limits and the
rule that malformed input only ever raises SpdyProtocolError."""

from __future__ import annotations

import asyncio
import hashlib
import string
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnode.kubelet.spdy import frames as f
from vnode.kubelet.spdy.dictionary import SPDY3_DICTIONARY

DICTIONARY_SHA256 = "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


async def parse_all(data: bytes, **limits: int) -> list[f.Frame]:
    """Every frame in `data` (followed by EOF), read the way a connection reads them."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    frames_reader = f.FrameReader(reader, **limits)
    parsed = []
    while (frame := await frames_reader.read_frame()) is not None:
        parsed.append(frame)
    return parsed


def control(kind: int, payload: bytes, *, version: int = 3, flags: int = 0) -> bytes:
    head = (0x80000000 | version << 16 | kind).to_bytes(4, "big") + (flags << 24 | len(payload)).to_bytes(4, "big")
    return head + payload


def compressed(block: bytes) -> bytes:
    z = zlib.compressobj(zdict=SPDY3_DICTIONARY)
    return z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)


def test_dictionary_is_the_specs_1423_bytes() -> None:
    assert len(SPDY3_DICTIONARY) == 1423
    assert hashlib.sha256(SPDY3_DICTIONARY).hexdigest() == DICTIONARY_SHA256


FRAME_TYPES = (f.SynStream, f.SynReply, f.RstStream, f.Settings, f.Ping, f.GoAway, f.Headers, f.WindowUpdate, f.Data)
EVERY_FRAME: list[f.Frame] = [
    f.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}, associated_id=0, priority=3, slot=0),
    f.SynStream(3, {"streamtype": "stdin"}, fin=True, unidirectional=True),
    f.SynReply(1),
    f.SynReply(3, {"x": "y"}, fin=True),
    f.RstStream(5, f.CANCEL),
    f.Settings(((1, 7, 65536), (0, 4, 100)), clear=True),
    f.Ping(1),
    f.GoAway(7, f.GOAWAY_PROTOCOL_ERROR),
    f.Headers(1, {"a": "b"}, fin=True),
    f.WindowUpdate(0, 4096),
    f.Data(1, b"hello", fin=False),
    f.Data(3, b"", fin=True),
]


async def test_every_frame_type_round_trips_in_order_through_one_encoder() -> None:
    encoder = f.FrameEncoder()
    wire = b"".join(encoder.encode(frame) for frame in EVERY_FRAME)
    assert await parse_all(wire) == EVERY_FRAME


async def test_header_blocks_share_one_compression_stream() -> None:
    """The second block is only decodable with the first one's zlib state, as SPDY/3 requires."""
    encoder = f.FrameEncoder()
    first = encoder.encode(f.SynStream(1, {"streamtype": "stdout"}))
    second = encoder.encode(f.SynStream(3, {"streamtype": "stdout"}))
    assert (await parse_all(first + second))[1] == f.SynStream(3, {"streamtype": "stdout"})
    with pytest.raises(f.SpdyProtocolError):
        await parse_all(second)


async def test_header_names_are_lower_cased_and_nul_joined_values_kept() -> None:
    block = f.HeaderEncoder().encode({"StreamType": "data", "multi": "a\x00b"})
    (frame,) = await parse_all(control(f.SYN_REPLY, (1).to_bytes(4, "big") + block))
    assert isinstance(frame, f.SynReply)
    assert frame.headers == {"streamtype": "data", "multi": "a\x00b"}


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(string.ascii_lowercase + "-", min_size=1, max_size=20), st.text(max_size=200),
                       max_size=12))
def test_header_block_round_trip(headers: dict[str, str]) -> None:
    encoder, decoder = f.HeaderEncoder(), f.HeaderDecoder(1 << 20)
    for _ in range(2):  # the second pass decodes against the zlib state the first one left
        assert decoder.decode(encoder.encode(headers)) == headers


async def test_unknown_control_frame_types_are_skipped() -> None:
    wire = control(0x0A, b"whatever") + f.FrameEncoder().encode(f.Ping(1))
    assert await parse_all(wire) == [f.Ping(1)]


async def test_clean_eof_between_frames_ends_reading() -> None:
    assert await parse_all(b"") == []


MALFORMED = {
    "version 2": control(f.PING, b"\x00\x00\x00\x01", version=2),
    "truncated header": b"\x80\x03\x00",
    "truncated payload": control(f.PING, b"\x00\x00\x00\x01")[:-1],
    "ping of 3 bytes": control(f.PING, b"\x00\x00\x01"),
    "ping id 0": control(f.PING, b"\x00\x00\x00\x00"),
    "rst status 0": control(f.RST_STREAM, b"\x00\x00\x00\x01\x00\x00\x00\x00"),
    "rst stream 0": control(f.RST_STREAM, b"\x00\x00\x00\x00\x00\x00\x00\x05"),
    "goaway of 4 bytes": control(f.GOAWAY, b"\x00\x00\x00\x01"),
    "settings count beyond payload": control(f.SETTINGS, b"\x00\x00\x00\x02" + b"\x00" * 8),
    "data for stream 0": b"\x00\x00\x00\x00\x00\x00\x00\x01x",
    "syn_stream too short": control(f.SYN_STREAM, b"\x00\x00\x00\x01"),
    "not zlib": control(f.SYN_STREAM, b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00garbage!"),
    "header count beyond block": control(f.SYN_REPLY, b"\x00\x00\x00\x01" + compressed(b"\x00\x00\x00\x05")),
    "header length beyond block": control(
        f.SYN_REPLY, b"\x00\x00\x00\x01" + compressed(b"\x00\x00\x00\x01\x00\x00\x00\x09ab\x00\x00\x00\x00")
    ),
    "empty header name": control(f.SYN_REPLY, b"\x00\x00\x00\x01" + compressed(b"\x00\x00\x00\x01" + b"\x00" * 8)),
    "duplicate header": control(
        f.SYN_REPLY, b"\x00\x00\x00\x01" + compressed(b"\x00\x00\x00\x02" + b"\x00\x00\x00\x01a\x00\x00\x00\x00" * 2)
    ),
    "bytes after the last header": control(f.SYN_REPLY, b"\x00\x00\x00\x01" + compressed(b"\x00\x00\x00\x00xyz")),
}


@pytest.mark.parametrize("wire", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_input_raises_protocol_error(wire: bytes) -> None:
    with pytest.raises(f.SpdyProtocolError):
        await parse_all(wire)


async def test_frame_over_the_size_limit_is_refused_before_its_payload_arrives() -> None:
    head_only = b"\x00\x00\x00\x01\x00\x01\x00\x00"  # DATA claiming 64 KiB, none of which follows
    with pytest.raises(f.SpdyProtocolError, match="over the limit"):
        await parse_all(head_only, max_frame_bytes=1024)


async def test_header_block_that_inflates_past_the_limit_is_refused() -> None:
    block = f.HeaderEncoder().encode({"big": "x" * 100_000})
    with pytest.raises(f.SpdyProtocolError, match="larger than"):
        await parse_all(control(f.SYN_REPLY, (1).to_bytes(4, "big") + block), max_header_block_bytes=10_000)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
async def test_arbitrary_bytes_parse_or_raise_protocol_error_only(data: bytes) -> None:
    try:
        parsed = await parse_all(data)
    except f.SpdyProtocolError:
        return
    assert all(isinstance(frame, FRAME_TYPES) for frame in parsed)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(EVERY_FRAME), max_size=6), st.integers(0, 300), st.binary(max_size=8))
async def test_corrupted_valid_streams_parse_or_raise_protocol_error_only(
    sequence: list[f.Frame], position: int, noise: bytes
) -> None:
    encoder = f.FrameEncoder()
    wire = b"".join(encoder.encode(frame) for frame in sequence)
    try:
        parsed = await parse_all(wire[:position] + noise + wire[position + len(noise) :])
    except f.SpdyProtocolError:
        return
    assert all(isinstance(frame, FRAME_TYPES) for frame in parsed)
