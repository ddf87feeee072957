"""run_command: real host processes behind a StreamIO (exit codes, stdin, terminals, cancellation, backpressure)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios
from pathlib import Path

import pytest

from tests.support.wait import eventually
from tests.unit.providers.streamio_fakes import MemorySink, MemorySource, sink, stream_io
from vnode.errors import NotFound
from vnode.providers.mock_exec import READ_BYTES, run_command
from vnode.providers.streams import StreamIO, TerminalSize

ENV = {"PATH": os.environ.get("PATH", os.defpath)}
WAIT = 10.0


async def run(command: list[str], io: StreamIO, cwd: Path) -> int:
    async with asyncio.timeout(WAIT):
        return await run_command(command, io, cwd=cwd, env=ENV)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def terminal(stdin: MemorySource | None = None, size: TerminalSize | None = None) -> StreamIO:
    """A tty session; with no `size`, the client sends none (its resize stream is closed, as without one)."""
    io = stream_io(stdin, tty=True)
    if size is None:
        io.resizes.close()
    else:
        io.resizes.put(size)
    return io


async def test_the_exit_code_is_the_commands(tmp_path: Path) -> None:
    assert await run(["sh", "-c", "exit 3"], stream_io(), tmp_path) == 3


async def test_a_signal_death_reports_128_plus_the_signal(tmp_path: Path) -> None:
    assert await run(["sh", "-c", "kill -9 $$"], stream_io(), tmp_path) == 137


async def test_stdout_and_stderr_stay_apart(tmp_path: Path) -> None:
    io = stream_io()
    await run(["sh", "-c", "echo out; echo err >&2"], io, tmp_path)
    assert (sink(io.stdout).data, sink(io.stderr).data) == (b"out\n", b"err\n")


async def test_stdin_is_piped_and_its_eof_ends_cat(tmp_path: Path) -> None:
    io = stream_io(MemorySource(b"first\n", b"second", eof=True))
    assert await run(["cat"], io, tmp_path) == 0
    assert sink(io.stdout).data == b"first\nsecond"


async def test_the_command_runs_in_cwd_with_env(tmp_path: Path) -> None:
    io = stream_io()
    async with asyncio.timeout(WAIT):
        await run_command(["sh", "-c", 'pwd; echo "$GREETING"'], io, cwd=tmp_path, env={**ENV, "GREETING": "hi"})
    assert sink(io.stdout).data == f"{tmp_path}\nhi\n".encode()


async def test_a_tty_starts_with_the_queued_size(tmp_path: Path) -> None:
    io = terminal(size=TerminalSize(width=100, height=30))
    assert await run(["stty", "size"], io, tmp_path) == 0
    assert sink(io.stdout).data == b"30 100\r\n"


async def test_a_tty_waits_for_a_size_sent_just_after_the_call(tmp_path: Path) -> None:
    io = stream_io(tty=True)
    command = asyncio.create_task(run(["stty", "size"], io, tmp_path))
    for _ in range(3):
        await asyncio.sleep(0)  # the call is under way (it would have started `stty` by now without the wait)
    io.resizes.put(TerminalSize(width=100, height=30))
    assert await command == 0
    assert sink(io.stdout).data == b"30 100\r\n"


async def test_a_tty_without_sizes_starts_at_once_as_0x0(tmp_path: Path) -> None:
    io = terminal()
    assert await run(["stty", "size"], io, tmp_path) == 0
    assert sink(io.stdout).data == b"0 0\r\n"


async def test_a_tty_resize_reaches_the_running_command(tmp_path: Path) -> None:
    stdin = MemorySource()
    io = terminal(stdin, TerminalSize(width=80, height=24))
    command = asyncio.create_task(run(["sh", "-c", "stty -echo; echo ready; read line; stty size"], io, tmp_path))
    await sink(io.stdout).wait_for(lambda out: b"ready" in out, "ready")
    io.resizes.put(TerminalSize(width=120, height=40))
    stdin.feed(b"\n")  # the resize is applied before this line reaches the terminal: both wake in this order
    assert await command == 0
    assert sink(io.stdout).data.endswith(b"40 120\r\n")


async def test_a_tty_is_a_pts_device_and_the_controlling_terminal(tmp_path: Path) -> None:
    io = terminal()
    assert await run(["sh", "-c", "tty; echo via-dev-tty > /dev/tty"], io, tmp_path) == 0
    lines = sink(io.stdout).data.split(b"\r\n")
    assert lines[0].startswith(b"/dev/pts/"), lines
    assert lines[1] == b"via-dev-tty"  # /dev/tty opens only for a process with a controlling terminal


async def test_tty_input_reaches_the_command(tmp_path: Path) -> None:
    io = terminal(MemorySource(b"typed\n"))
    assert await run(["sh", "-c", "stty -echo; read line; echo got $line"], io, tmp_path) == 0
    assert sink(io.stdout).data.endswith(b"got typed\r\n")


async def test_a_missing_executable_is_not_found_in_runcs_words(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r'^exec: "nosuch": executable file not found in \$PATH$'):
        await run(["nosuch"], stream_io(), tmp_path)


async def test_cancelling_kills_the_command_but_not_what_it_started_in_the_background(tmp_path: Path) -> None:
    io = stream_io()
    command = asyncio.create_task(run(
        ["sh", "-c", "nohup sh -c 'sleep 1; touch done' >/dev/null 2>&1 & echo $$; exec sleep 60"], io, tmp_path))
    out = await sink(io.stdout).wait_for(lambda data: data.endswith(b"\n"), "the shell's pid")
    pid = int(out)
    command.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):  # `sleep 60` was killed, not waited for
            await command
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # and reaped

    async def done() -> bool:
        return (tmp_path / "done").exists()
    await eventually(done, timeout_seconds=WAIT, what="the background child's file")


async def test_no_fd_is_left_behind(tmp_path: Path) -> None:
    before = open_fds()
    await run(["sh", "-c", "echo x; exit 2"], stream_io(MemorySource(b"in\n", eof=True)), tmp_path)
    await run(["tty"], terminal(), tmp_path)
    for turns in range(6):  # cancelled at different points of setting up, then while it runs
        cancelled = asyncio.create_task(run(["sleep", "60"], terminal(MemorySource()), tmp_path))
        for _ in range(turns):
            await asyncio.sleep(0)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(WAIT):
                await cancelled
    assert open_fds() == before


async def test_a_slow_client_blocks_the_command_instead_of_filling_memory(tmp_path: Path) -> None:
    slow = MemorySink(keep=False, gated=True)
    io = stream_io(stdout=slow)
    command = asyncio.create_task(run(["sh", "-c", "echo $$ > pid; yes | head -c 50M"], io, tmp_path))
    await asyncio.wait_for(slow.held.wait(), WAIT)
    pipe = os.open(f"/proc/{(tmp_path / 'pid').read_text().strip()}/fd/1", os.O_RDONLY | os.O_NONBLOCK)
    try:
        capacity = fcntl.fcntl(pipe, fcntl.F_GETPIPE_SZ)

        async def pipe_full() -> bool:
            queued = struct.unpack("i", fcntl.ioctl(pipe, termios.FIONREAD, b"\0" * 4))[0]
            return bool(queued == capacity)
        # A full pipe: `head` is blocked in write(2) while we hold one chunk for the client.
        await eventually(pipe_full, timeout_seconds=WAIT, what="the command's stdout pipe to fill up")
    finally:
        os.close(pipe)
    assert slow.total == 0
    assert slow.held_chunk is not None and 0 < len(slow.held_chunk) <= READ_BYTES
    slow.gate.set()
    assert await command == 0
    assert slow.total == 50 * 1024 * 1024
