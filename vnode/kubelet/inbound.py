"""Bounded, backpressured inbound bytes for one consumer: what a client sent on one channel or stream (exec stdin,
one forwarded connection, one SPDY stream) until the consumer reads it.

It owns the chunks, their byte count, the end of input and the `room` event a producer waits on before it takes
more from the wire. It must not do I/O: the WebSocket receive loop and the SPDY read loop feed it and decide when to
wait.
"""

from __future__ import annotations

import asyncio
import collections


class InputBuffer:
    """Bytes from the client for one consumer, bounded by `limit_bytes`.

    The producer takes nothing further from the wire while `room` is clear, so a consumer that does not read slows
    the client down through TCP instead of growing memory: at most one message (or frame) beyond the limit is ever
    held.
    """

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._eof = False
        self._readable = asyncio.Event()
        self.room = asyncio.Event()  # clear while the buffer is full: the producer waits on it
        self.room.set()

    @property
    def buffered_bytes(self) -> int:
        return self._size

    @property
    def ended(self) -> bool:
        """No more data will be taken: EOF was fed, or the buffer was discarded."""
        return self._eof

    def feed(self, data: bytes) -> None:
        if self._eof or not data:  # an empty chunk would read as EOF; data after EOF has no reader (upstream drops it)
            return
        self._chunks.append(data)
        self._size += len(data)
        self._readable.set()
        if self._size >= self._limit:
            self.room.clear()

    def feed_eof(self) -> None:
        """The end of input: `read` returns what is buffered, then b''."""
        self._eof = True
        self._readable.set()

    def discard(self) -> None:
        """The consumer is gone (or the input was cut off): drop what was not read and every later chunk, so the
        producer keeps flowing; `read` returns b'' straight away."""
        self._chunks.clear()
        self._size = 0
        self.feed_eof()
        self.room.set()

    async def read(self) -> bytes:
        """The next chunk as it arrived; b'' once input has ended and nothing is left."""
        while not self._chunks:
            if self._eof:
                return b""
            self._readable.clear()
            await self._readable.wait()
        chunk = self._chunks.popleft()
        self._size -= len(chunk)
        if self._size < self._limit:
            self.room.set()
        return chunk
