"""A relay a test can cut to make a backend really unreachable: connections are refused and open ones dropped,
until `start()` listens again (on the same address)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class SocketRelay:
    """A unix socket (`path`) or loopback TCP port (`port`, fixed after the first start) relaying to `connect()`
    while it is up; `cut()` refuses and drops every connection."""

    def __init__(self, connect: Connect, *, path: Path | None = None) -> None:
        self.path = path
        self.port = 0
        self._connect = connect
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def to_unix(cls, path: Path, target: str) -> SocketRelay:
        return cls(lambda: asyncio.open_unix_connection(target), path=path)

    @classmethod
    def to_tcp(cls, host: str, port: int) -> SocketRelay:
        return cls(lambda: asyncio.open_connection(host, port))

    async def start(self) -> None:
        if self.path is not None:
            self._server = await asyncio.start_unix_server(self._relay, path=str(self.path))
            return
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writers = [writer]
        self._writers.add(writer)
        try:
            target_reader, target_writer = await self._connect()
            writers.append(target_writer)
            self._writers.add(target_writer)
            await asyncio.gather(_pump(reader, target_writer), _pump(target_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for each in writers:
                self._writers.discard(each)
                each.transport.abort()
            self._tasks.discard(task)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof():
        sink.write_eof()
