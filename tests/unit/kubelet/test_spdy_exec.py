"""The SPDY remote-command adapter, driven by the test client as client-go drives a kubelet: which streams are
waited for, how the session's streams map to StreamIO, resizes, and the order in which a session ends."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.unit.kubelet.spdy_client import ClientStream, Session, spdy_session
from vnode.kubelet import remotecommand as rc
from vnode.kubelet.channels import V1, V2, V3, V4, V5, CommandChannels
from vnode.kubelet.spdy import frames as f
from vnode.kubelet.spdy.connection import ConnectionClosed
from vnode.kubelet.spdy_exec import SpdyCommandChannels, expected_stream_types, open_command_channels
from vnode.providers.streams import StreamIO, TerminalSize

TIMEOUT = 10.0


@pytest.mark.parametrize(
    ("protocol", "options", "expected"),
    [
        (V4, {"stdin": True, "stdout": True, "stderr": True, "tty": False}, {"error", "stdin", "stdout", "stderr"}),
        (V4, {"stdin": True, "stdout": True, "stderr": True, "tty": True}, {"error", "stdin", "stdout", "resize"}),
        (V5, {"stdin": False, "stdout": True, "stderr": False, "tty": True}, {"error", "stdout", "resize"}),
        (V3, {"stdin": True, "stdout": False, "stderr": False, "tty": True}, {"error", "stdin", "resize"}),
        (V2, {"stdin": True, "stdout": True, "stderr": False, "tty": True}, {"error", "stdin", "stdout"}),
        (V1, {"stdin": False, "stdout": True, "stderr": True, "tty": False}, {"error", "stdout", "stderr"}),
        ("", {"stdin": False, "stdout": True, "stderr": False, "tty": True}, {"error", "stdout"}),
    ],
    ids=["v4", "v4 tty", "v5 tty", "v3 tty", "v2 tty: no resize", "v1", "unnegotiated tty: no resize"],
)
def test_expected_stream_types(protocol: str, options: dict[str, bool], expected: set[str]) -> None:
    assert expected_stream_types(protocol, **options) == expected


async def open_streams(s: Session, *kinds: str) -> dict[str, ClientStream]:
    return {kind: await s.client.open_stream({"streamtype": kind}) for kind in kinds}


async def open_channels(s: Session, protocol: str = V4, *, tty: bool = False, stdin: bool = True,
                        stderr: bool = True, creation_timeout_seconds: float = TIMEOUT) -> SpdyCommandChannels:
    return await open_command_channels(s.conn, protocol=protocol, stdin=stdin, stdout=True, stderr=stderr, tty=tty,
                                       creation_timeout_seconds=creation_timeout_seconds)


async def test_streams_map_to_stream_io() -> None:
    async with spdy_session() as s:
        client = await open_streams(s, "error", "stdin", "stdout", "stderr")
        async with await open_channels(s) as channels:
            io = channels.io
            assert io.stdin is not None and io.stdout is not None and io.stderr is not None and not io.tty
            await client["stdin"].write(b"input")
            await client["stdin"].close_write()
            async with asyncio.timeout(TIMEOUT):
                assert [await io.stdin.read(), await io.stdin.read()] == [b"input", b""]
            await io.stdout.write(b"out")
            await io.stderr.write(b"err")
            async with asyncio.timeout(TIMEOUT):
                assert (await client["stdout"].read(), await client["stderr"].read()) == (b"out", b"err")


async def test_streams_not_asked_for_are_none_in_stream_io() -> None:
    async with spdy_session() as s:
        await open_streams(s, "error", "stdout")
        adapter = await open_channels(s, stdin=False, stderr=False)
        channels: CommandChannels = adapter  # the adapter is what run_session takes
        try:
            assert channels.io.stdin is None and channels.io.stderr is None and channels.io.stdout is not None
        finally:
            await adapter.aclose()


async def test_unknown_stream_type_is_reset_and_the_rest_accepted() -> None:
    async with spdy_session() as s:
        bogus = await s.client.open_stream({"streamtype": "bogus"})
        await open_streams(s, "error", "stdout")
        async with await open_channels(s, stdin=False, stderr=False):
            await s.client.ping()
            assert bogus.reset_status == f.CANCEL


async def test_missing_streams_time_out() -> None:
    async with spdy_session() as s:
        await open_streams(s, "error", "stdin")
        with pytest.raises(TimeoutError):
            await open_channels(s, creation_timeout_seconds=0.2)


async def test_connection_ending_before_the_streams_raises_connection_closed() -> None:
    async with spdy_session() as s:
        await open_streams(s, "error")
        await s.client.send_goaway()
        with pytest.raises(ConnectionClosed):
            await open_channels(s)


async def test_finish_ends_stdout_and_stderr_then_sends_status_then_goaway() -> None:
    async with spdy_session() as s:
        client = await open_streams(s, "error", "stdout", "stderr")
        async with await open_channels(s, stdin=False) as channels:
            assert channels.io.stdout is not None
            await channels.io.stdout.write(b"done")
            await channels.finish(b'{"metadata":{},"status":"Success"}')
            await s.client.wait_closed()
        error, stdout, stderr = client["error"].id, client["stdout"].id, client["stderr"].id
        assert [frame for frame in s.client.received if not isinstance(frame, f.SynReply)] == [
            f.Data(stdout, b"done"),
            f.Data(stdout, b"", fin=True),
            f.Data(stderr, b"", fin=True),
            f.Data(error, b'{"metadata":{},"status":"Success"}'),
            f.Data(error, b"", fin=True),
            f.GoAway(error + 4, f.GOAWAY_OK),
        ]


async def test_finish_without_status_only_ends_the_error_stream() -> None:
    async with spdy_session() as s:
        client = await open_streams(s, "error", "stdout")
        async with await open_channels(s, stdin=False, stderr=False) as channels:
            await channels.finish(None)
            assert await client["error"].read_all() == b""
            assert client["error"].fin_received


async def test_resizes_arrive_as_terminal_sizes_and_bad_lines_are_skipped() -> None:
    async with spdy_session() as s:
        client = await open_streams(s, "error", "stdin", "stdout", "resize")
        async with await open_channels(s, tty=True) as channels:
            sizes = aiter(channels.io.resizes)
            await client["resize"].write(b'{"Width":100,')  # a line may span DATA frames
            await client["resize"].write(b'"Height":30}\n')
            async with asyncio.timeout(TIMEOUT):
                assert await anext(sizes) == TerminalSize(width=100, height=30)
            await client["resize"].write(b'not json\n{"Width":1,"Height":2}')  # the last line has no newline
            await client["resize"].close_write()
            async with asyncio.timeout(TIMEOUT):
                assert [size async for size in sizes] == [TerminalSize(width=1, height=2)]


async def test_client_gone_returns_when_the_client_disconnects() -> None:
    async with spdy_session() as s:
        await open_streams(s, "error", "stdout")
        async with await open_channels(s, stdin=False, stderr=False) as channels:
            gone = asyncio.create_task(channels.client_gone(), name="client gone")
            try:
                await s.client.aclose()
                async with asyncio.timeout(TIMEOUT):
                    await gone
            finally:
                gone.cancel()
                await asyncio.gather(gone, return_exceptions=True)
            assert s.conn.closed.is_set()


async def test_a_whole_v4_session_through_run_session_reports_the_exit_code() -> None:
    async def cat_then_exit_3(io: StreamIO) -> int:
        assert io.stdin is not None and io.stdout is not None
        while data := await io.stdin.read():
            await io.stdout.write(data.upper())
        return 3

    async with spdy_session() as s:
        client = await open_streams(s, "error", "stdin", "stdout", "stderr")
        await client["stdin"].write(b"hello")
        await client["stdin"].close_write()
        async with await open_channels(s) as channels:
            await rc.run_session(channels, V4, cat_then_exit_3, name="test exec")
        assert await client["stdout"].read_all() == b"HELLO"
        status = json.loads(await client["error"].read_all())
        assert (status["reason"], status["details"]["causes"][0]["message"]) == ("NonZeroExitCode", "3")
        assert (await s.client.wait_goaway()).status == f.GOAWAY_OK
