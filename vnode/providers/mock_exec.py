"""Running an exec'd command as a host process for the mock provider, with real exit codes, stdin and terminals.

It owns the child process and every fd it opens for it: pipes (stdin half-closes on the client's EOF) or a
pseudo-terminal (the child's controlling terminal, resized on request). Output is read only as fast as the client
takes it, so a slow client blocks the command instead of growing memory. Cancellation (the client left) kills the
command's own process, not its process group: what it started in the background lives on, as in a container. It
must not know about pods, logs or wire protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import struct
import subprocess
import termios
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from vnode.errors import NotFound, VnodeError
from vnode.providers.streams import ByteSink, ByteSource, ResizeQueue, StreamClosed, StreamIO, TerminalSize

READ_BYTES = 64 * 1024
# kubectl sends the terminal's size right after the streams are up; a command started before it arrives sees a 0x0
# terminal (`stty size` says "0 0"), so a tty command waits this long for the first size unless the queue closes.
FIRST_SIZE_WAIT_SECONDS = 0.5


async def run_command(command: Sequence[str], io: StreamIO, *, cwd: Path, env: Mapping[str, str]) -> int:
    """Run `command` with `io`'s streams and return its exit code (128+N after signal N, as a shell reports)."""
    if not command:
        raise NotFound('exec: "": executable file not found in $PATH')
    fds = _terminal(io) if io.tty else _pipes(io)
    helpers: list[asyncio.Task[None]] = []
    process: asyncio.subprocess.Process | None = None
    try:
        if io.tty:
            sized = asyncio.Event()
            helpers.append(asyncio.create_task(_apply_resizes(fds.input, io.resizes, sized), name="exec resizes"))
            # asyncio.timeout, not wait_for: in 3.11 wait_for swallows a cancellation that races the wait's end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_SIZE_WAIT_SECONDS):
                    await sized.wait()
        process = await _spawn(command, fds, cwd=cwd, env=env)
        fds.close_child_ends()
        if io.stdin is not None:
            helpers.append(asyncio.create_task(_copy_in(io.stdin, fds), name="exec stdin"))
        # The command is done when it exited and every holder of its output closed it (like `docker exec`: a
        # background child that keeps stdout open keeps the session open).
        outputs = [asyncio.create_task(_copy_out(fd, sink), name="exec output") for fd, sink in fds.outputs]
        helpers.extend(outputs)
        await asyncio.gather(*outputs)
        code = await process.wait()
        return 128 - code if code < 0 else code
    finally:
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        fds.close_all()


@dataclass
class _Fds:
    """The fds one command uses; closing is idempotent so each is closed exactly once whatever happens."""

    terminal: bool = False
    child_stdin: int = subprocess.DEVNULL
    child_stdout: int = subprocess.DEVNULL
    child_stderr: int = subprocess.DEVNULL
    input: int = -1  # where stdin goes: the pipe's write end or the terminal's master
    half_close_input: bool = False
    outputs: list[tuple[int, ByteSink | None]] = field(default_factory=list)
    child_ends: list[int] = field(default_factory=list)
    open: set[int] = field(default_factory=set)

    def own(self, *fds: int) -> None:
        self.open.update(fds)

    def close(self, fd: int) -> None:
        if fd in self.open:
            self.open.discard(fd)
            os.close(fd)

    def close_child_ends(self) -> None:
        for fd in self.child_ends:
            self.close(fd)

    def close_all(self) -> None:
        for fd in list(self.open):
            self.close(fd)


def _pipes(io: StreamIO) -> _Fds:
    fds = _Fds()
    try:
        if io.stdin is not None:
            read_end, fds.input = os.pipe()
            fds.own(read_end, fds.input)
            os.set_blocking(fds.input, False)
            fds.child_stdin, fds.half_close_input = read_end, True
            fds.child_ends.append(read_end)
        for which, sink in (("stdout", io.stdout), ("stderr", io.stderr)):
            if sink is None:
                continue
            read_end, write_end = os.pipe()
            fds.own(read_end, write_end)
            os.set_blocking(read_end, False)
            setattr(fds, f"child_{which}", write_end)
            fds.child_ends.append(write_end)
            fds.outputs.append((read_end, sink))
    except BaseException:
        fds.close_all()
        raise
    return fds


def _terminal(io: StreamIO) -> _Fds:
    master, slave = os.openpty()
    fds = _Fds(terminal=True, child_stdin=slave, child_stdout=slave, child_stderr=slave, input=master,
               child_ends=[slave])
    fds.own(master, slave)
    os.set_blocking(master, False)
    fds.outputs.append((master, io.stdout))  # with a terminal, stderr is merged into it
    return fds


def _take_terminal() -> None:
    # Runs in the child after setsid(): its stdin (the slave) becomes the new session's controlling terminal, so
    # ^C, job control and SIGHUP on hang-up work as in a container started with a tty.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def _spawn(command: Sequence[str], fds: _Fds, *, cwd: Path, env: Mapping[str, str],
                 ) -> asyncio.subprocess.Process:
    extra: dict[str, Any] = {"preexec_fn": _take_terminal} if fds.terminal else {}
    try:
        return await asyncio.create_subprocess_exec(
            *command, stdin=fds.child_stdin, stdout=fds.child_stdout, stderr=fds.child_stderr, cwd=cwd,
            env=dict(env), start_new_session=True, **extra)
    except FileNotFoundError as exc:
        if exc.filename == str(cwd):
            raise
        # runc's words, which kubectl users know from real clusters.
        if "/" in command[0]:
            raise NotFound(f'exec: "{command[0]}": stat {command[0]}: no such file or directory') from exc
        raise NotFound(f'exec: "{command[0]}": executable file not found in $PATH') from exc
    except PermissionError as exc:
        raise VnodeError(f'exec: "{command[0]}": permission denied') from exc


async def _copy_out(fd: int, sink: ByteSink | None) -> None:
    while chunk := await _read(fd):
        if sink is None:
            continue
        try:
            await sink.write(chunk)  # returns once the client took it: the command waits for a slow client
        except StreamClosed:
            sink = None  # nobody reads any more; drain so the command is not stuck on a full pipe


async def _copy_in(source: ByteSource, fds: _Fds) -> None:
    try:
        while chunk := await source.read():
            await _write_all(fds.input, chunk)
    except StreamClosed:
        pass  # the client went away: as good as its EOF
    except OSError:
        return  # the command closed its stdin or ended
    if fds.half_close_input:
        fds.close(fds.input)  # the client's EOF becomes the command's EOF
    # A terminal cannot be half-closed: the command keeps its terminal, as with a real runtime.


async def _apply_resizes(master: int, sizes: ResizeQueue, sized: asyncio.Event) -> None:
    """Set each size on the terminal; `sized` is set after the first, or once no size can come (queue closed)."""
    try:
        async with contextlib.aclosing(cast(AsyncGenerator[TerminalSize, None], aiter(sizes))) as queue:
            async for size in queue:
                # struct winsize is rows, columns, then pixel sizes; the kernel sends SIGWINCH to the foreground
                # process group.
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))
                sized.set()
    finally:
        sized.set()


async def _read(fd: int) -> bytes:
    """The next chunk from a non-blocking fd; b"" at EOF, and at EIO, which is how a pty master reports that every
    slave fd is closed."""
    while True:
        try:
            return os.read(fd, READ_BYTES)
        except BlockingIOError:
            await _ready(fd, write=False)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await _ready(fd, write=True)


async def _ready(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)
