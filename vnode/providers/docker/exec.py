"""Exec and attach sessions on Docker containers, connected to a protocol-free `StreamIO`.

It owns one hijacked engine connection per session (aiodocker's `Stream`) and the three copies over it: output to
`io.stdout`/`io.stderr` by stream type (a tty has only stdout), `io.stdin` in (its EOF half-closes the connection,
which the engine turns into the process's stdin EOF), and terminal sizes. Leaving a session (cancellation: the
client left) closes the connection and never kills anything: a process started in the background, like Jenkins'
`nohup sh -c "..." &` wrapper, must outlive it. It must not look containers up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import cast

import aiohttp
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError
from aiodocker.stream import Stream

from vnode.clock import Clock
from vnode.errors import BackendUnavailable
from vnode.providers.streams import ByteSink, ByteSource, ResizeQueue, StreamClosed, StreamIO, TerminalSize

# kubectl sends the terminal's size right after the streams are up; input waits this long for that first size, so a
# command reading its terminal (`stty size`) after input arrived sees the client's size, not 0x0.
FIRST_SIZE_WAIT_SECONDS = 0.5
EXIT_CODE_POLL_SECONDS = 0.05
EXIT_CODE_POLLS = 100  # the engine records an exec's exit code just after its output ends

Resize = Callable[[TerminalSize], Awaitable[None]]


async def run_exec(container: DockerContainer, command: Sequence[str], io: StreamIO, clock: Clock) -> int:
    """Run `command` in the (running) container and return its exit code."""
    # Output is always attached, and dropped here when unwanted, so the session lasts as long as the command.
    execution = await container.exec(list(command), stdin=io.stdin is not None, stdout=True, stderr=True,
                                     tty=io.tty)

    async def resize(size: TerminalSize) -> None:
        await execution.resize(h=size.height, w=size.width)

    # Docker's exec config keeps stdin open until the client closes it; a terminal is not half-closed (as runc).
    await run_session(execution.start(detach=False), io, resize, half_close=not io.tty)
    for _ in range(EXIT_CODE_POLLS):
        details = await execution.inspect()
        if not details.get("Running") and details.get("ExitCode") is not None:
            return int(details["ExitCode"])
        await clock.sleep(EXIT_CODE_POLL_SECONDS)
    raise BackendUnavailable(f"the engine reported no exit code for exec {execution.id}")


async def run_attach(container: DockerContainer, io: StreamIO) -> int:
    """Connect `io` to the container's main process until it ends; return its exit code."""
    stream = container.attach(stdin=io.stdin is not None, stdout=True, stderr=True, logs=False)

    async def resize(size: TerminalSize) -> None:
        await container.resize(h=size.height, w=size.width)

    # Whether the client's EOF closes the main process's stdin is the container's StdinOnce, decided by the engine.
    await run_session(stream, io, resize, half_close=True)
    result = await container.wait()
    return int(result["StatusCode"])


async def run_session(stream: Stream, io: StreamIO, resize: Resize, *, half_close: bool) -> None:
    """Copy between `stream` and `io` until the engine ends the output (the process and every holder of its
    stdout/stderr are gone); closing the connection on the way out, whatever happens."""
    helpers: list[asyncio.Task[None]] = []
    async with stream:  # hijacks the connection (POST .../start or .../attach, Upgrade: tcp)
        try:
            sized = asyncio.Event()
            if io.tty:
                helpers.append(asyncio.create_task(_apply_resizes(io.resizes, resize, sized), name="docker resizes"))
            else:
                sized.set()
            if io.stdin is not None:
                helpers.append(asyncio.create_task(_copy_in(stream, io.stdin, sized, half_close=half_close),
                                                   name="docker stdin"))
            await _copy_out(stream, io)
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)


async def _copy_out(stream: Stream, io: StreamIO) -> None:
    # Stream types of the engine's multiplexed format: 1 stdout, 2 stderr; a tty stream is all stdout.
    sinks: dict[int, ByteSink | None] = {1: io.stdout, 2: None if io.tty else io.stderr}
    while (message := await stream.read_out()) is not None:
        sink = sinks.get(message.stream)
        if sink is None or not message.data:
            continue  # still read: a command blocked on a full pipe would never end
        try:
            await sink.write(message.data)  # awaited before reading on: a slow client slows the command
        except StreamClosed:
            sinks[message.stream] = None


async def _copy_in(stream: Stream, source: ByteSource, sized: asyncio.Event, *, half_close: bool) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FIRST_SIZE_WAIT_SECONDS):
            await sized.wait()
    try:
        while chunk := await source.read():
            await stream.write_in(chunk)
    except StreamClosed:
        pass  # the client went away: as good as its EOF
    except (OSError, RuntimeError, aiohttp.ClientError):
        return  # the engine closed the connection: the process ended
    if half_close:
        _close_stdin(stream)


def _close_stdin(stream: Stream) -> None:
    """Half-close the hijacked connection: the engine closes the process's stdin and keeps its output flowing.

    aiodocker's Stream has no public half-close (its `close()` also drops the connection), so this writes the EOF on
    the response's transport. A TLS connection to a remote engine cannot half-close; there stdin stays open."""
    response = stream._resp
    connection = response.connection if response is not None else None
    transport = connection.transport if connection is not None else None
    if transport is not None and transport.can_write_eof():
        transport.write_eof()


async def _apply_resizes(queue: ResizeQueue, resize: Resize, sized: asyncio.Event) -> None:
    try:
        async with contextlib.aclosing(cast(AsyncGenerator[TerminalSize, None], aiter(queue))) as sizes:
            async for size in sizes:
                # The engine waits for the exec to have started before it resizes; it refuses once it ended.
                with contextlib.suppress(DockerError):
                    await resize(size)
                sized.set()
    finally:
        sized.set()
