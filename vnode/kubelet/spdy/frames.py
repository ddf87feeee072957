"""SPDY/3.1 frames as the kubelet streaming API uses them: the frame types, a frame reader with size limits, the
header-block codec and the frame encoder.

It owns the bytes of each frame and the zlib state of header blocks: SPDY/3 compresses every header block of one
direction of a connection as a single zlib stream (primed with the spec's dictionary, sync-flushed after each block),
so a connection has exactly one `HeaderDecoder` (inside its `FrameReader`) and one `HeaderEncoder` (inside its
`FrameEncoder`), and both must see every block in order. It must not keep stream or connection state.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from vnode.kubelet.spdy.dictionary import SPDY3_DICTIONARY

VERSION = 3
MAX_LENGTH = 0xFFFFFF  # every frame's length field is 24 bits

# Control frame types (SPDY/3 section 2.6); 5 (NOOP) was dropped in SPDY/3.
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02  # SYN_STREAM only

# RST_STREAM status codes (section 2.6.3).
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6
FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED, FRAME_TOO_LARGE = 7, 8, 9, 11
# GOAWAY status codes (section 2.6.6).
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2

_HEAD = struct.Struct("!II")  # control: C|version|type, flags|length; data: C|stream id, flags|length
_ID_31 = 0x7FFFFFFF  # stream ids and window deltas are 31 bits; the top bit is reserved


class SpdyProtocolError(ValueError):
    """The peer sent bytes that are not valid SPDY/3.1; the connection cannot continue."""


@dataclass(frozen=True, slots=True)
class SynStream:
    stream_id: int
    headers: Mapping[str, str] = field(default_factory=dict)
    associated_id: int = 0
    priority: int = 0  # 3 bits, 0 is highest
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, slots=True)
class SynReply:
    stream_id: int
    headers: Mapping[str, str] = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, slots=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()  # (flags, id, value)
    clear: bool = False


@dataclass(frozen=True, slots=True)
class Ping:
    ping_id: int  # odd from the client, even from the server


@dataclass(frozen=True, slots=True)
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True, slots=True)
class Headers:
    stream_id: int
    headers: Mapping[str, str] = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    stream_id: int  # 0: the whole session (SPDY/3.1)
    delta: int


@dataclass(frozen=True, slots=True)
class Data:
    stream_id: int
    data: bytes = b""
    fin: bool = False


Frame = SynStream | SynReply | RstStream | Settings | Ping | GoAway | Headers | WindowUpdate | Data


class HeaderEncoder:
    """Name/value header blocks, compressed as one zlib stream per direction with a sync flush after each block."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zdict=SPDY3_DICTIONARY)

    def encode(self, headers: Mapping[str, str]) -> bytes:
        parts = [len(headers).to_bytes(4, "big")]
        for name, value in headers.items():
            for text in (name.lower(), value):  # SPDY/3 header names are lower case on the wire
                raw = text.encode()
                parts += (len(raw).to_bytes(4, "big"), raw)
        block = b"".join(parts)
        return self._zlib.compress(block) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecoder:
    """The peer's header blocks: one zlib stream across all blocks, each decoded to at most `max_block_bytes`."""

    def __init__(self, max_block_bytes: int) -> None:
        self._zlib = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self._max = max_block_bytes

    def decode(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._zlib.decompress(compressed, self._max + 1)
        except zlib.error as exc:
            raise SpdyProtocolError(f"undecodable header block: {exc}") from None
        if len(block) > self._max or self._zlib.unconsumed_tail:
            raise SpdyProtocolError(f"header block larger than {self._max} bytes")
        if self._zlib.unused_data or self._zlib.eof:
            raise SpdyProtocolError("the peer ended its header compression stream")
        return parse_header_block(block)


def parse_header_block(block: bytes) -> dict[str, str]:
    """Decode an uncompressed name/value block; names lower-cased, NUL-joined multi-values kept as sent."""
    if len(block) < 4:
        raise SpdyProtocolError("header block shorter than its count")
    count = int.from_bytes(block[:4], "big")
    if count > (len(block) - 4) // 8:  # every pair needs two 4-byte lengths
        raise SpdyProtocolError(f"header block claims {count} headers in {len(block)} bytes")
    headers: dict[str, str] = {}
    offset = 4
    for _ in range(count):
        name, offset = _string(block, offset)
        value, offset = _string(block, offset)
        if not name:
            raise SpdyProtocolError("empty header name")
        name = name.lower()
        if name in headers:
            raise SpdyProtocolError(f"header {name!r} sent twice")
        headers[name] = value
    if offset != len(block):
        raise SpdyProtocolError("bytes after the last header")
    return headers


def _string(block: bytes, offset: int) -> tuple[str, int]:
    if offset + 4 > len(block):
        raise SpdyProtocolError("header length beyond the block")
    size = int.from_bytes(block[offset : offset + 4], "big")
    end = offset + 4 + size
    if end > len(block):
        raise SpdyProtocolError("header text beyond the block")
    try:
        return block[offset + 4 : end].decode(), end
    except UnicodeDecodeError:
        raise SpdyProtocolError("header text is not UTF-8") from None


class FrameReader:
    """Reads frames from `reader` one at a time; owns the connection's inbound header decompressor.

    `max_frame_bytes` bounds any frame's payload; header-carrying frames are also bounded by
    `max_header_block_bytes` (compressed, and again once decompressed). `check_data_stream` sees a DATA frame's
    stream id before its payload is read, so a frame that cannot be valid fails without waiting for its bytes.
    Unknown control frame types are skipped, as SPDY/3 asks. Anything malformed raises SpdyProtocolError.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        *,
        max_frame_bytes: int = MAX_LENGTH,
        max_header_block_bytes: int = 1 << 20,
        check_data_stream: Callable[[int], None] | None = None,
    ) -> None:
        self._reader = reader
        self._check_data_stream = check_data_stream
        self._max_frame = max_frame_bytes
        self._max_control = max_header_block_bytes + 64  # a compressed block may be slightly larger than its input
        self._headers = HeaderDecoder(max_header_block_bytes)

    async def read_frame(self) -> Frame | None:
        """The next frame; None on a clean end of stream between frames."""
        while True:
            try:
                head = await self._reader.readexactly(_HEAD.size)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    return None
                raise SpdyProtocolError("connection ended inside a frame header") from None
            word, flags_length = _HEAD.unpack(head)
            flags, length = flags_length >> 24, flags_length & MAX_LENGTH
            control = bool(word & 0x80000000)
            if control and (version := (word >> 16) & 0x7FFF) != VERSION:
                raise SpdyProtocolError(f"SPDY version {version}, not {VERSION}")
            if length > self._max_frame or (control and length > self._max_control):
                raise SpdyProtocolError(f"frame of {length} bytes is over the limit")
            if not control and self._check_data_stream is not None:
                self._check_data_stream(word & _ID_31)
            try:
                payload = await self._reader.readexactly(length)
            except asyncio.IncompleteReadError:
                raise SpdyProtocolError("connection ended inside a frame") from None
            if not control:
                return _data(word & _ID_31, flags, payload)
            frame = self._control(word & 0xFFFF, flags, payload)
            if frame is not None:
                return frame

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame | None:
        fin = bool(flags & FLAG_FIN)
        if kind == SYN_STREAM:
            _need(payload, 10, exact=False, what="SYN_STREAM")
            stream_id, associated, priority, slot = struct.unpack_from("!IIBB", payload)
            headers = self._headers.decode(payload[10:])
            return SynStream(_stream_id(stream_id), headers, associated & _ID_31, priority >> 5, slot, fin,
                             bool(flags & FLAG_UNIDIRECTIONAL))
        if kind in (SYN_REPLY, HEADERS):
            _need(payload, 4, exact=False, what="SYN_REPLY/HEADERS")
            stream_id = _stream_id(int.from_bytes(payload[:4], "big"))
            headers = self._headers.decode(payload[4:])
            return SynReply(stream_id, headers, fin) if kind == SYN_REPLY else Headers(stream_id, headers, fin)
        if kind == RST_STREAM:
            _need(payload, 8, what="RST_STREAM")
            stream_id, status = struct.unpack("!II", payload)
            if status == 0:
                raise SpdyProtocolError("RST_STREAM with status 0")
            return RstStream(_stream_id(stream_id), status)
        if kind == SETTINGS:
            _need(payload, 4, exact=False, what="SETTINGS")
            count = int.from_bytes(payload[:4], "big")
            if len(payload) != 4 + 8 * count:
                raise SpdyProtocolError(f"SETTINGS claims {count} entries in {len(payload)} bytes")
            pairs = struct.iter_unpack("!II", payload[4:])
            entries = tuple((head >> 24, head & 0xFFFFFF, value) for head, value in pairs)
            return Settings(entries, clear=fin)
        if kind == PING:
            _need(payload, 4, what="PING")
            ping_id = int.from_bytes(payload, "big")
            if ping_id == 0:
                raise SpdyProtocolError("PING with id 0")
            return Ping(ping_id)
        if kind == GOAWAY:
            _need(payload, 8, what="GOAWAY")
            last, status = struct.unpack("!II", payload)
            return GoAway(last & _ID_31, status)
        if kind == WINDOW_UPDATE:
            _need(payload, 8, what="WINDOW_UPDATE")
            stream_id, delta = struct.unpack("!II", payload)
            return WindowUpdate(stream_id & _ID_31, delta & _ID_31)
        return None  # SPDY/3: a receiver ignores control frames of unknown types


def _need(payload: bytes, size: int, *, what: str, exact: bool = True) -> None:
    if len(payload) < size or (exact and len(payload) != size):
        raise SpdyProtocolError(f"{what} payload of {len(payload)} bytes")


def _stream_id(raw: int) -> int:
    stream_id = raw & _ID_31
    if stream_id == 0:
        raise SpdyProtocolError("stream id 0 is not allowed here")
    return stream_id


def _data(stream_id: int, flags: int, payload: bytes) -> Data:
    return Data(_stream_id(stream_id), payload, bool(flags & FLAG_FIN))


def _control_head(kind: int, flags: int, length: int) -> bytes:
    if length > MAX_LENGTH:
        raise ValueError(f"control frame payload of {length} bytes does not fit SPDY's 24-bit length")
    return _HEAD.pack(0x80000000 | VERSION << 16 | kind, flags << 24 | length)


class FrameEncoder:
    """Serialises frames; owns the connection's outbound header compressor, so every frame must go through one."""

    def __init__(self) -> None:
        self._headers = HeaderEncoder()

    def encode(self, frame: Frame) -> bytes:
        match frame:
            case Data(stream_id, data, fin):
                if len(data) > MAX_LENGTH:
                    raise ValueError(f"DATA payload of {len(data)} bytes does not fit SPDY's 24-bit length")
                return _HEAD.pack(stream_id & _ID_31, (FLAG_FIN if fin else 0) << 24 | len(data)) + data
            case SynStream(stream_id, headers, associated, priority, slot, fin, unidirectional):
                body = struct.pack("!IIBB", stream_id, associated, (priority & 7) << 5, slot)
                body += self._headers.encode(headers)
                flags = (FLAG_FIN if fin else 0) | (FLAG_UNIDIRECTIONAL if unidirectional else 0)
                return _control_head(SYN_STREAM, flags, len(body)) + body
            case SynReply(stream_id, headers, fin) | Headers(stream_id, headers, fin):
                body = stream_id.to_bytes(4, "big") + self._headers.encode(headers)
                kind = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
                return _control_head(kind, FLAG_FIN if fin else 0, len(body)) + body
            case RstStream(stream_id, status):
                return _control_head(RST_STREAM, 0, 8) + struct.pack("!II", stream_id, status)
            case Settings(entries, clear):
                body = len(entries).to_bytes(4, "big")
                body += b"".join(struct.pack("!II", flags << 24 | key, value) for flags, key, value in entries)
                return _control_head(SETTINGS, FLAG_FIN if clear else 0, len(body)) + body
            case Ping(ping_id):
                return _control_head(PING, 0, 4) + ping_id.to_bytes(4, "big")
            case GoAway(last, status):
                return _control_head(GOAWAY, 0, 8) + struct.pack("!II", last, status)
            case WindowUpdate(stream_id, delta):
                return _control_head(WINDOW_UPDATE, 0, 8) + struct.pack("!II", stream_id, delta)
        raise TypeError(f"not a SPDY frame: {frame!r}")
