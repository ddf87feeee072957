"""SpdyConnection against the test client over real loopback TCP: stream setup, data both ways, pings, resets,
misbehaving peers, the idle timeout and inbound backpressure."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.support.wait import eventually
from tests.unit.kubelet.spdy_client import Session, spdy_session
from vnode.kubelet.spdy import frames as f
from vnode.kubelet.spdy.connection import DATA_CHUNK_BYTES, ConnectionClosed, SpdyStream
from vnode.providers.streams import StreamClosed

TIMEOUT = 10.0


async def accept(session: Session) -> SpdyStream:
    async with asyncio.timeout(TIMEOUT):
        return await session.conn.accept_stream()


async def test_opened_stream_gets_syn_reply_and_arrives_with_its_headers() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"StreamType": "stdout", "port": "80"})
        server_stream = await accept(s)
        assert client_stream.reply.is_set()
        assert (server_stream.id, dict(server_stream.headers)) == (1, {"streamtype": "stdout", "port": "80"})


async def test_client_data_then_fin_reads_as_data_then_eof() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "stdin"})
        server_stream = await accept(s)
        await client_stream.write(b"hello")
        await client_stream.close_write()
        async with asyncio.timeout(TIMEOUT):
            assert [await server_stream.read(), await server_stream.read(), await server_stream.read()] == [
                b"hello", b"", b""]


async def test_server_writes_arrive_in_chunks_and_close_write_is_fin() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "stdout"})
        server_stream = await accept(s)
        payload = os.urandom(3 * DATA_CHUNK_BYTES + 5)
        await server_stream.write(payload)
        await server_stream.close_write()
        await server_stream.close_write()  # idempotent
        assert await client_stream.read_all() == payload
        assert client_stream.fin_received and client_stream.reset_status is None


async def test_server_splits_writes_into_frames_of_at_most_32_kib() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "stdout"})
        server_stream = await accept(s)
        await server_stream.write(b"x" * (DATA_CHUNK_BYTES * 2 + 1))
        await server_stream.close_write()
        sizes = []
        async with asyncio.timeout(TIMEOUT):
            while chunk := await client_stream.read():
                sizes.append(len(chunk))
        assert sizes == [DATA_CHUNK_BYTES, DATA_CHUNK_BYTES, 1]


async def test_client_pings_are_echoed_and_even_ids_are_not() -> None:
    async with spdy_session() as s:
        await s.client.send(f.Ping(2))  # an even id is the server's own ping id space: a reply, never echoed
        assert await s.client.ping() == 1  # answered after the even one was processed
        assert s.client.pings == {1}


async def test_settings_and_window_updates_are_ignored() -> None:
    async with spdy_session() as s:
        await s.client.send(f.Settings(((0, 7, 1),)))
        await s.client.send(f.WindowUpdate(0, 1000))
        await s.client.ping()
        assert not s.run.done() and not s.client.resets_for_unknown


async def test_peer_reset_ends_that_stream_only() -> None:
    async with spdy_session() as s:
        doomed = await s.client.open_stream({"streamtype": "stdin"})
        kept = await s.client.open_stream({"streamtype": "stdout"})
        doomed_server, kept_server = await accept(s), await accept(s)
        await doomed.reset()
        async with asyncio.timeout(TIMEOUT):
            assert await doomed_server.read() == b""
        with pytest.raises(StreamClosed):
            await doomed_server.write(b"late")
        await kept_server.write(b"still here")
        await kept_server.close_write()
        assert await kept.read_all() == b"still here"


async def test_server_reset_sends_rst_cancel() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "data"})
        (await accept(s)).reset()
        await s.client.ping()  # everything sent before the echo has arrived
        assert client_stream.reset_status == f.CANCEL


async def test_data_for_a_stream_that_has_ended_gets_rst_invalid_stream() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "stdout"})
        await (await accept(s)).close_write()
        await client_stream.close_write()  # both sides done: the stream is gone
        await client_stream.write(b"late")
        await s.client.ping()
        assert client_stream.reset_status == f.INVALID_STREAM and not s.run.done()


async def test_data_for_a_stream_never_opened_ends_the_connection() -> None:
    async with spdy_session() as s:
        await s.client.open_stream({"streamtype": "stdout"})
        await s.client.send_raw(b"\x00\x00\x00\x07\x00\x10\x00\x00")  # stream 7 claims 1 MiB: no need to wait for it
        assert (await s.client.wait_goaway()).status == f.GOAWAY_PROTOCOL_ERROR
        await s.client.wait_closed()


async def test_streams_beyond_the_limit_are_refused() -> None:
    async with spdy_session(max_streams=2) as s:
        await s.client.open_stream({"streamtype": "error"})
        await s.client.open_stream({"streamtype": "stdout"})
        refused = await s.client.open_stream({"streamtype": "stdin"})
        await refused.write(b"in flight")  # dropped, not answered
        await s.client.ping()
        assert refused.reset_status == f.REFUSED_STREAM and not s.client.resets_for_unknown


async def test_data_in_flight_after_our_reset_is_dropped_silently() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "data"})
        (await accept(s)).reset()
        await client_stream.write(b"already on its way")
        await s.client.ping()
        assert not s.client.resets_for_unknown and not s.run.done()


@pytest.mark.parametrize("stream_id", [2, 1], ids=["even id", "id not increasing"])
async def test_syn_stream_with_a_bad_id_gets_rst_protocol_error(stream_id: int) -> None:
    async with spdy_session() as s:
        await s.client.open_stream({"streamtype": "error"})
        await accept(s)
        await s.client.send(f.SynStream(stream_id, {"streamtype": "stdout"}))
        await s.client.ping()
        opened = s.client.streams.get(stream_id)
        status = opened.reset_status if opened else next(r.status for r in s.client.resets_for_unknown)
        assert status == f.PROTOCOL_ERROR


async def test_syn_stream_with_fin_reads_as_eof_at_once() -> None:
    async with spdy_session() as s:
        await s.client.open_stream({"streamtype": "error"}, fin=True)
        async with asyncio.timeout(TIMEOUT):
            assert await (await accept(s)).read() == b""


async def test_garbage_ends_the_connection_with_goaway_protocol_error() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "stdin"})
        server_stream = await accept(s)
        await s.client.send_raw(b"\x80\x02\x00\x01\x00\x00\x00\x00")  # a SPDY/2 frame header
        async with asyncio.timeout(TIMEOUT):
            await s.run  # run() ends on its own and does not raise
        assert s.conn.closed.is_set()
        assert (await s.client.wait_goaway()).status == f.GOAWAY_PROTOCOL_ERROR
        await s.client.wait_closed()
        assert await server_stream.read() == b""
        assert client_stream.ended


async def test_goaway_from_the_client_ends_run_and_every_stream() -> None:
    async with spdy_session() as s:
        await s.client.open_stream({"streamtype": "stdout"})
        server_stream = await accept(s)
        await s.client.send_goaway()
        async with asyncio.timeout(TIMEOUT):
            await s.run
        with pytest.raises(StreamClosed):
            await server_stream.write(b"too late")
        with pytest.raises(ConnectionClosed):
            await s.conn.accept_stream()


async def test_client_disconnect_ends_run_but_buffered_data_is_still_read() -> None:
    async with spdy_session() as s:
        client_stream = await s.client.open_stream({"streamtype": "stdin"})
        server_stream = await accept(s)
        await client_stream.write(b"last words")
        await s.client.ping()
        await s.client.aclose()
        async with asyncio.timeout(TIMEOUT):
            await s.run
            assert [await server_stream.read(), await server_stream.read()] == [b"last words", b""]


async def test_close_sends_goaway_ok_with_the_last_stream_id_then_eof() -> None:
    async with spdy_session() as s:
        await s.client.open_stream({"streamtype": "error"})
        await s.client.open_stream({"streamtype": "stdout"})
        await accept(s)
        await s.conn.close()
        await s.conn.close()  # idempotent
        assert await s.client.wait_goaway() == f.GoAway(3, f.GOAWAY_OK)
        await s.client.wait_closed()
        async with asyncio.timeout(TIMEOUT):
            await s.run
        with pytest.raises(ConnectionClosed):
            await s.conn.accept_stream()


async def test_idle_connection_is_closed_after_the_timeout() -> None:
    async with spdy_session(idle_timeout_seconds=0.5) as s:
        await s.client.open_stream({"streamtype": "stdout"})
        server_stream = await accept(s)
        async with asyncio.timeout(TIMEOUT):
            await s.run
        assert (await s.client.wait_goaway()).status == f.GOAWAY_OK
        assert await server_stream.read() == b""


async def test_cancelling_run_closes_every_stream() -> None:
    async with spdy_session() as s:
        await s.client.open_stream({"streamtype": "stdin"})
        server_stream = await accept(s)
        s.run.cancel()
        await asyncio.gather(s.run, return_exceptions=True)
        assert s.conn.closed.is_set()
        async with asyncio.timeout(TIMEOUT):
            assert await server_stream.read() == b""
        await s.client.wait_closed()


async def test_slow_consumer_bounds_buffered_bytes_while_the_client_sends_10_mib() -> None:
    limit, frame_bytes, total = 256 * 1024, 64 * 1024, 10 * 1024 * 1024
    async with spdy_session(stream_buffer_bytes=limit) as s:
        client_stream = await s.client.open_stream({"streamtype": "stdin"})
        server_stream = await accept(s)
        payload = os.urandom(total)

        async def send() -> None:
            await client_stream.write(payload, frame_bytes=frame_bytes)
            await client_stream.close_write()

        sender = asyncio.create_task(send(), name="10 MiB sender")
        try:
            async def full() -> bool:
                return server_stream.buffered_bytes >= limit

            await eventually(full, timeout_seconds=TIMEOUT, what="the stream buffer to fill")
            # The read loop now waits for room: nothing more is buffered however long the consumer sleeps.
            for _ in range(20):
                await asyncio.sleep(0)
            assert limit <= server_stream.buffered_bytes <= limit + frame_bytes
            received = bytearray()
            async with asyncio.timeout(TIMEOUT * 3):
                while chunk := await server_stream.read():
                    received += chunk
                    assert server_stream.buffered_bytes <= limit + frame_bytes
            assert bytes(received) == payload
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
