"""A front protocol for an HTTP/1.1 (TLS) listener that sniffs the first request head on each connection.

It hands the connection either to aiohttp (keep-alive requests then stay there) or, when `wants_raw` says so,
to a raw-stream handler running in a task the `FrontServer` owns; that is how SPDY/3.1 and spliced WebSocket
upgrades, which aiohttp cannot parse or hand over, get the raw bytes. It owns head parsing and the handoff;
it must not interpret requests beyond the head, nor touch a connection once aiohttp has it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl as _ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

log = logging.getLogger(__name__)

DEFAULT_MAX_HEAD_BYTES = 64 * 1024
# RFC 9110 token characters: method and header names must consist of these.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(r"^HTTP/(\d)\.(\d)$")


class HeadParseError(ValueError):
    """The bytes before the first CRLFCRLF are not an HTTP/1.x request head."""


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str  # the request-target exactly as sent
    path: str  # percent-decoded path (like Go's URL.Path)
    raw_path: str  # path as sent, still percent-encoded
    query: tuple[tuple[str, str], ...]  # decoded pairs in order, repeated keys kept
    headers: CIMultiDictProxy[str]
    version: tuple[int, int]
    raw: bytes  # the head including its final CRLFCRLF

    def header_values(self, name: str) -> list[str]:
        """All values of a header across repeated lines, also split on commas (RFC 9110 list syntax)."""
        return [v.strip() for line in self.headers.getall(name, []) for v in line.split(",") if v.strip()]

    @property
    def upgrade(self) -> str:
        """The lower-cased `Upgrade` protocol when `Connection` lists `upgrade`, else ''."""
        if "upgrade" not in (v.lower() for v in self.header_values("Connection")):
            return ""
        return self.headers.get("Upgrade", "").strip().lower()


def parse_request_head(raw: bytes) -> RequestHead:
    """Parse `raw` (ending with CRLFCRLF) into a RequestHead; raise HeadParseError on anything malformed."""
    # Header bytes are ISO-8859-1 on the wire (RFC 9110 5.5); latin-1 maps every byte.
    lines = raw.decode("latin-1").split("\r\n")
    if len(lines) < 3 or lines[-1] != "" or lines[-2] != "":
        raise HeadParseError("head does not end with CRLFCRLF")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.match(parts[0]):
        raise HeadParseError(f"malformed request line {lines[0]!r}")
    method, target, version_text = parts
    version = _VERSION.match(version_text)
    if version is None:
        raise HeadParseError(f"unsupported protocol {version_text!r}")
    if target.startswith("/"):
        raw_path, _, query_text = target.partition("?")
    elif target.startswith(("http://", "https://")):  # absolute-form (RFC 9112 3.2.2)
        split = urlsplit(target)
        raw_path, query_text = split.path or "/", split.query
    elif target == "*" and method == "OPTIONS":
        raw_path, query_text = "*", ""
    else:
        raise HeadParseError(f"malformed request target {target!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:-2]:
        if line[:1] in (" ", "\t"):  # obsolete line folding is rejected (RFC 9112 5.2)
            raise HeadParseError("obsolete header line folding")
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise HeadParseError(f"malformed header line {line!r}")
        value = value.strip(" \t")
        if any(c in value for c in "\r\n\x00"):
            raise HeadParseError(f"invalid character in header {name}")
        headers.add(name, value)
    return RequestHead(
        method=method,
        target=target,
        path=unquote(raw_path),
        raw_path=raw_path,
        query=tuple(parse_qsl(query_text, keep_blank_values=True)),
        headers=CIMultiDictProxy(headers),
        version=(int(version.group(1)), int(version.group(2))),
        raw=raw,
    )


async def write_simple_response(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra_headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Write a complete HTTP/1.1 response with `Connection: close`; the caller closes the connection."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra_headers),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


async def close_writer(writer: asyncio.StreamWriter, grace_seconds: float = 5.0) -> None:
    """Close gracefully (TLS close_notify) within `grace_seconds`, else abort; a dead peer never raises."""
    writer.close()
    try:
        async with asyncio.timeout(grace_seconds):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise


RawHandler = Callable[[RequestHead, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class FrontServer:
    """Owns the front protocol's listeners and the raw-handler tasks; `close()` cancels and awaits them.

    Connections given to aiohttp belong to its runner: shut that down (`runner.cleanup()`) separately.
    """

    def __init__(
        self,
        aiohttp_factory: Callable[[], asyncio.Protocol],
        *,
        wants_raw: Callable[[RequestHead], bool],
        raw_handler: RawHandler,
        max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES,
        head_timeout_seconds: float = 30.0,
        stream_limit: int = 64 * 1024,
    ) -> None:
        self._aiohttp_factory = aiohttp_factory
        self._wants_raw = wants_raw
        self._raw_handler = raw_handler
        self.max_head_bytes = max_head_bytes
        self.head_timeout_seconds = head_timeout_seconds
        self._stream_limit = stream_limit
        self._servers: list[asyncio.Server] = []
        self._sniffing: set[asyncio.Transport] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def protocol_factory(self) -> asyncio.Protocol:
        """Pass this to `loop.create_server(front.protocol_factory, ssl=ctx)`."""
        return _FrontProtocol(self)

    async def listen(self, host: str, port: int, *, ssl: _ssl.SSLContext | None = None) -> asyncio.Server:
        """Start a listener that `close()` will stop; port 0 picks a free port."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(self.protocol_factory, host, port, ssl=ssl)
        self._servers.append(server)
        return server

    @property
    def raw_connections(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        self._closed = True
        for server in self._servers:
            server.close()
        for transport in list(self._sniffing):
            transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # Called by _FrontProtocol.

    def _hand_off(self, transport: asyncio.Transport, head: RequestHead, buffered: bytes) -> None:
        self._sniffing.discard(transport)
        if self._closed:
            transport.abort()
            return
        try:
            raw = self._wants_raw(head)
        except Exception:
            log.exception("wants_raw failed; serving %s %s with aiohttp", head.method, head.path)
            raw = False
        if not raw:
            protocol = self._aiohttp_factory()
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            protocol.data_received(buffered)
            return
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self._stream_limit, loop=loop)
        stream_protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        transport.set_protocol(stream_protocol)
        stream_protocol.connection_made(transport)
        writer = asyncio.StreamWriter(transport, stream_protocol, reader, loop)
        rest = buffered[len(head.raw) :]
        if rest:
            # Bytes the client sent after the head (pipelined or early protocol bytes) stay in order.
            reader.feed_data(rest)
        name = f"front raw {head.method} {head.path}"
        task = loop.create_task(self._run_raw(head, reader, writer), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_raw(
        self, head: RequestHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await self._raw_handler(head, reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception:
            log.exception("raw handler failed for %s %s", head.method, head.path)
        await close_writer(writer)


class _FrontProtocol(asyncio.Protocol):
    def __init__(self, owner: FrontServer) -> None:
        self._owner = owner
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._scanned = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._owner._sniffing.add(transport)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._owner.head_timeout_seconds, transport.abort)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._buffer += data
        # Resume the search 3 bytes back so a CRLFCRLF split across reads is still found.
        end = self._buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        limit = self._owner.max_head_bytes
        if end < 0 or end + 4 > limit:
            self._scanned = len(self._buffer)
            if len(self._buffer) > limit:
                # Go's net/http answers an oversized head this way (431, RFC 6585 section 5).
                self._reject(transport, 431)
            return
        try:
            head = parse_request_head(bytes(self._buffer[: end + 4]))
        except HeadParseError as exc:
            log.debug("rejecting malformed request head: %s", exc)
            self._reject(transport, 400)
            return
        self._stop()
        self._owner._hand_off(transport, head, bytes(self._buffer))
        self._buffer = bytearray()

    def eof_received(self) -> bool | None:
        return False  # the head never completed: let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None:
            self._owner._sniffing.discard(self._transport)

    def _reject(self, transport: asyncio.Transport, status: int) -> None:
        self._stop()
        phrase = HTTPStatus(status).phrase
        body = f"{status} {phrase}".encode()
        transport.write(
            f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        transport.close()
        self._buffer = bytearray()
