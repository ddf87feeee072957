"""In-memory ByteSource, ByteSink, ByteStream and StreamIO for driving providers' stream calls in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vnode.providers.streams import ResizeQueue, StreamClosed, StreamIO

WAIT_SECONDS = 10.0


class MemorySource:
    """Chunks the test `feed`s, in order; `close()` is the client's EOF (b"" from then on)."""

    def __init__(self, *chunks: bytes, eof: bool = False) -> None:
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._ended = False
        for chunk in chunks:
            self.feed(chunk)
        if eof:
            self.close()

    def feed(self, data: bytes) -> None:
        assert data, "an empty chunk would be EOF; use close()"
        self._queue.put_nowait(data)

    def close(self) -> None:
        self._queue.put_nowait(b"")

    async def read(self) -> bytes:
        if self._ended:
            return b""
        chunk = await self._queue.get()
        self._ended = not chunk
        return chunk


class MemorySink:
    """Keeps what it is given (or only counts it, with `keep=False`). While `gate` is cleared, each write waits at
    it (`held` is set and `held_chunk` is the waiting chunk): a client that stopped reading."""

    def __init__(self, *, keep: bool = True, gated: bool = False) -> None:
        self.chunks: list[bytes] = []
        self.total = 0
        self.keep = keep
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.held = asyncio.Event()
        self.held_chunk: bytes | None = None
        self.gone = False  # the client went away: writes raise StreamClosed
        self._changed = asyncio.Condition()

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    async def write(self, data: bytes) -> None:
        if self.gone:
            raise StreamClosed("client gone")
        if not self.gate.is_set():
            self.held_chunk = bytes(data)
            self.held.set()
            await self.gate.wait()
        self.total += len(data)
        if self.keep:
            self.chunks.append(bytes(data))
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[bytes], bool], what: str = "output") -> bytes:
        """Wait (bounded) until what was written satisfies `predicate`; return it."""
        try:
            async with asyncio.timeout(WAIT_SECONDS), self._changed:
                await self._changed.wait_for(lambda: predicate(self.data))
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; got {self.data!r}") from None
        return self.data


class MemoryStream(MemorySource, MemorySink):
    """One forwarded connection: the test feeds what the client sends and reads what the pod side wrote."""

    def __init__(self, *chunks: bytes, eof: bool = False) -> None:
        MemorySource.__init__(self, *chunks, eof=eof)
        MemorySink.__init__(self)
        self.write_closed = False

    async def write(self, data: bytes) -> None:
        assert not self.write_closed, "write after close_write"
        await MemorySink.write(self, data)

    async def close_write(self) -> None:
        self.write_closed = True


def stream_io(stdin: MemorySource | None = None, *, tty: bool = False,
              stdout: MemorySink | None = None, stderr: MemorySink | None = None) -> StreamIO:
    """A StreamIO with fresh sinks unless given; with a tty there is no stderr, as the kubelet arranges it."""
    return StreamIO(stdin=stdin, stdout=stdout or MemorySink(), stderr=None if tty else stderr or MemorySink(),
                    tty=tty, resizes=ResizeQueue())


def sink(stream: MemorySink | object | None) -> MemorySink:
    assert isinstance(stream, MemorySink)
    return stream
