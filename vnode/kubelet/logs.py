"""`GET /containerLogs/{ns}/{pod}/{container}`: decode and validate the query like the kubelet, then stream.

The kubelet decodes the query into v1.PodLogOptions (400 `{"message": "Unable to decode query."}` when a value does
not parse, 422 `{"message": "Invalid request."}` when it fails validation; those bodies are Go error strings that
look like JSON, kept byte for byte), answers chunked and flushes after every write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from aiohttp import web

from vnode.clock import parse_rfc3339
from vnode.providers.streams import LogOptions

Query = Sequence[tuple[str, str]]
DECODE_ERROR = '{"message": "Unable to decode query."}'
INVALID_ERROR = '{"message": "Invalid request."}'
# How long the handler waits for the provider's first chunk before sending headers: errors found at once (no such
# previous instance) still get a status code, and a quiet `follow` is not held back.
FIRST_CHUNK_WAIT_SECONDS = 0.5


class LogQueryError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _bool(values: list[str]) -> bool:
    # apimachinery's string-to-bool conversion: only "0" and "false" (any case) are false.
    return bool(values) and values[0] != "0" and values[0].lower() != "false"


def _int(values: list[str]) -> int | None:
    if not values or values[0] == "":
        return None
    try:
        return int(values[0])
    except ValueError:
        raise LogQueryError(400, DECODE_ERROR) from None


def parse_log_options(query: Query, now: datetime) -> LogOptions:
    """The LogOptions a kubelet would serve for this query; LogQueryError(400|422) otherwise."""
    values: dict[str, list[str]] = {}
    for key, value in query:
        values.setdefault(key, []).append(value)
    if "tail" in values:  # the kubelet's legacy spelling; "all" means no limit
        tail = values.pop("tail")
        if tail and tail[0] != "all":
            values["tailLines"] = tail
        else:
            values.pop("tailLines", None)
    tail_lines = _int(values.get("tailLines", []))
    limit_bytes = _int(values.get("limitBytes", []))
    since_seconds = _int(values.get("sinceSeconds", []))
    since_time: datetime | None = None
    if values.get("sinceTime", [""])[0]:
        try:
            since_time = parse_rfc3339(values["sinceTime"][0])
        except ValueError:
            raise LogQueryError(400, DECODE_ERROR) from None
    # ValidatePodLogOptions: non-negative tail, positive limit and since, at most one of sinceSeconds/sinceTime.
    if (tail_lines is not None and tail_lines < 0) or (limit_bytes is not None and limit_bytes < 1):
        raise LogQueryError(422, INVALID_ERROR)
    if since_seconds is not None and (since_seconds < 1 or since_time is not None):
        raise LogQueryError(422, INVALID_ERROR)
    if since_seconds is not None:
        since_time = now - timedelta(seconds=since_seconds)
    return LogOptions(
        follow=_bool(values.get("follow", [])),
        previous=_bool(values.get("previous", [])),
        timestamps=_bool(values.get("timestamps", [])),
        since_time=since_time,
        tail_lines=tail_lines,
        limit_bytes=limit_bytes,
    )


async def stream_log(request: web.Request, chunks: AsyncIterator[bytes], limit_bytes: int | None) -> web.StreamResponse:
    """Send `chunks` chunked and flushed, cut at `limit_bytes`. An error before the first byte is a 400 with its text,
    as the kubelet answers when the runtime refuses the log request."""
    pending: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(chunks, None))
    try:
        done, _ = await asyncio.wait({pending}, timeout=FIRST_CHUNK_WAIT_SECONDS)
        if done and pending.exception() is not None:
            error = pending.exception()
            return web.Response(status=400, text=str(error))
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        left = limit_bytes
        chunk = await pending
        while chunk is not None:
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            if chunk:
                await response.write(chunk)  # aiohttp sends each write at once: the flush the kubelet does
            if left == 0:
                break
            chunk = await anext(chunks, None)
        await response.write_eof()
        return response
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
