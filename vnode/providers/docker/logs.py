"""Reading a Docker container's log the way the kubelet serves `kubectl logs`.

It owns the engine's log wire format (8-byte-header frames for non-tty containers, raw bytes for tty ones, each
message prefixed with the engine's timestamp because it always asks for one) and the kubelet's reading rules: tail
first (the engine's `tail`), then since (the engine filters to the second, this module to the nanosecond), then the
RFC3339Nano prefix when asked, then `limit_bytes` (prefixes count, the last line may be cut). It must not look
containers up or decide which instance to read.

aiodocker's own `DockerContainer.log` decodes the bytes as UTF-8 and drops what does not decode, so this reads the
response through `Docker._query` (private in aiodocker 0.27) to stay byte-exact.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
from aiodocker import Docker
from aiodocker.types import SENTINEL

from vnode.providers.streams import LogOptions

_HEADER = struct.Struct(">BxxxL")  # stream type (0 stdin, 1 stdout, 2 stderr), 3 zero bytes, payload length
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The engine writes jsonmessage.RFC3339NanoFixed: always 9 fraction digits; an offset instead of Z is tolerated.
_STAMP = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
_READ_BYTES = 64 * 1024


async def read_logs(docker: Docker, container_id: str, *, tty: bool, options: LogOptions,
                    ) -> AsyncGenerator[bytes, None]:
    """The container's log as `options` select it; with `follow`, until the engine ends the stream (the
    container stopped) or the caller stops iterating."""
    params: dict[str, str] = {"stdout": "1", "stderr": "1", "timestamps": "1", "follow": "1" if options.follow else "0"}
    if options.tail_lines is not None:
        params["tail"] = str(max(0, options.tail_lines))
    since_ns = None if options.since_time is None else _nanoseconds(options.since_time)
    if since_ns is not None:
        params["since"] = str(since_ns // 1_000_000_000)  # whole seconds, rounded down: never loses a line
    left = options.limit_bytes
    if left is not None and left <= 0:
        return
    # No total or read timeout (a followed log may be quiet for hours), as aiodocker does for its own log call.
    timeout = docker._resolve_long_running_timeout(SENTINEL)
    async with docker._query(f"containers/{container_id}/logs", params=params, timeout=timeout) as response:
        # _query hands over the response unfinalised: close it, also when the caller stops mid-stream.
        try:
            messages = _raw_messages(response) if tty else _framed_messages(response)
            async for message in messages:
                stamp_ns, stamp, text = _split(message)
                if since_ns is not None and stamp_ns is not None and stamp_ns < since_ns:
                    continue
                out = stamp + b" " + text if options.timestamps and stamp else text
                if left is not None:
                    out = out[:left]
                    left -= len(out)
                if out:
                    yield out
                if left == 0:
                    return
        finally:
            response.close()


def _format_stamp(raw: bytes) -> bytes:
    """The engine's timestamp as Go's RFC3339Nano in UTC, as the kubelet prints it (trailing zeros trimmed)."""
    match = _STAMP.fullmatch(raw)
    if match is None:
        return raw
    whole, fraction, zone = match.groups()
    moment = datetime.fromisoformat((whole + zone).decode().replace("Z", "+00:00")).astimezone(UTC)
    digits = (fraction or b"").rstrip(b"0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S").encode() + (b"." + digits if digits else b"") + b"Z"


def _split(message: bytes) -> tuple[int | None, bytes, bytes]:
    """(time in ns since the epoch, the kubelet-formatted stamp, the text) of one timestamped message."""
    raw, space, text = message.partition(b" ")
    match = _STAMP.fullmatch(raw) if space else None
    if match is None:
        return None, b"", message  # not timestamped (cannot happen with timestamps=1); passed through as is
    whole, fraction, zone = match.groups()
    moment = datetime.fromisoformat((whole + zone).decode().replace("Z", "+00:00"))
    nanos = int((fraction or b"0").ljust(9, b"0"))
    return _nanoseconds(moment) + nanos, _format_stamp(raw), text


def _nanoseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


async def _framed_messages(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Payloads of a multiplexed stream: one log message (a line, or a piece of a long one) per frame."""
    content = response.content
    while True:
        try:
            header = await content.readexactly(_HEADER.size)
            _, length = _HEADER.unpack(header)
            payload = await content.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            return  # the engine ended the stream (the container stopped, or no follow)
        if payload:
            yield payload


async def _raw_messages(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Lines of a tty container's log (no frames): each message ends at a newline."""
    pending = b""
    try:
        async for chunk in response.content.iter_chunked(_READ_BYTES):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line + b"\n"
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
        return
    if pending:
        yield pending
