"""Port-forward over a WebSocket, as the kubelet's CRI streaming server speaks it (the python `kubernetes` client's
`portforward()` uses this; kubectl tunnels SPDY instead, which the apiserver unwraps before it reaches us).

It must not parse the request or negotiate the subprotocol (the route handler does, with PORT_FORWARD_PROTOCOLS),
nor touch the pod: each port's connection is handed to `forward` as a protocol-free ByteStream.

Upstream facts (kubernetes/cri-streaming `pkg/streaming/portforward/websocket.go`, formerly kubernetes
`pkg/kubelet/cri/streaming/portforward/websocket.go`, and `wsstream/conn.go`):
- Subprotocols: `v4.channel.k8s.io` (binary), `v4.base64.channel.k8s.io` (base64) and none (binary). Unlike exec,
  the unversioned `channel.k8s.io`/`base64.channel.k8s.io` are NOT offered for port-forward.
- `port` query values may repeat and each may hold a comma-separated list; each must parse as a uint16 > 0, and at
  least one is required (`remotecommand.forward_ports` decodes them; errors are a 400 before the upgrade).
- Port i (in query order; duplicates allowed) gets data channel 2*i (read-write) and error channel 2*i+1 (the server
  only writes it; client data there is dropped, as is data for channels beyond the last port).
- Right after the upgrade, for each port in order, the server sends the port as a little-endian uint16, alone in one
  message, on the data channel and then on the error channel. The python client insists on exactly 2 bytes.
- One forwarded connection per port for the life of the socket; no "ready" message and no per-channel close on the
  wire. A failed forward writes `error forwarding port P to pod POD, uid UID: ERR` as text on its error channel.
- When every port's forward has returned the server closes the socket (1000).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import WSCloseCode, web

from vnode.kubelet.channels import V4
from vnode.kubelet.inbound import InputBuffer
from vnode.kubelet.remotecommand import forward_error_text
from vnode.kubelet.ws_codec import V4_BASE64, ChannelProtocolError
from vnode.kubelet.ws_exec import ChannelSocket
from vnode.providers.streams import ByteStream, StreamClosed

log = logging.getLogger(__name__)

# What the kubelet accepts for a WebSocket port-forward, besides no subprotocol at all.
PORT_FORWARD_PROTOCOLS: tuple[str, ...] = (V4, V4_BASE64)

Forward = Callable[[int, ByteStream], Awaitable[None]]


class _ForwardedStream:
    """Both directions of one port's connection: input from data channel 2*i, output to it."""

    def __init__(self, socket: ChannelSocket, channel: int, input_buffer: InputBuffer) -> None:
        self._socket = socket
        self._channel = channel
        self._input = input_buffer
        self._write_closed = False

    async def read(self) -> bytes:
        return await self._input.read()

    async def write(self, data: bytes) -> None:
        if self._write_closed:
            raise StreamClosed("this forwarded connection was half-closed towards the client")
        await self._socket.send_data(self._channel, data)

    async def close_write(self) -> None:
        # The channel protocol has no per-channel end of stream; upstream sends nothing either.
        self._write_closed = True


async def _receive(socket: ChannelSocket, inputs: Sequence[InputBuffer]) -> None:
    try:
        while (message := await socket.receive(room_in=inputs)) is not None:
            channel, payload = message
            index, is_error_channel = divmod(channel, 2)
            if not is_error_channel and index < len(inputs):
                inputs[index].feed(payload)
    except ChannelProtocolError as exc:
        await socket.reject(exc)
    finally:
        for buffer in inputs:
            buffer.feed_eof()


async def _forward_one(
    socket: ChannelSocket, index: int, port: int, input_buffer: InputBuffer, forward: Forward, target: tuple[str, str]
) -> None:
    stream = _ForwardedStream(socket, 2 * index, input_buffer)
    try:
        await forward(port, stream)
    except Exception as exc:
        try:
            await socket.send(2 * index + 1, forward_error_text(port, exc, *target).encode())
        except StreamClosed:
            log.debug("port-forward error for port %d not sent: the client is gone", port)
    finally:
        await stream.close_write()
        input_buffer.discard()  # later client data for this port has no reader; it must not stall the other ports


async def serve_websocket_port_forward(
    ws: web.WebSocketResponse,
    ports: Sequence[int],
    forward: Forward,
    *,
    idle_timeout_seconds: float,
    buffer_bytes: int = 1024 * 1024,
    client_gone_grace_seconds: float = 2.0,
    pod: str = "",
    uid: str = "",
) -> None:
    """Forward each of `ports` over the prepared `ws` until every forward returns or the client goes away.

    `buffer_bytes` bounds each port's unread client input (the socket stops receiving beyond it). Once the client
    has gone, forwards see EOF and StreamClosed and get `client_gone_grace_seconds` to return before they are
    cancelled (a pod that keeps its side open after our half-close would otherwise hold the call forever).
    `pod` and `uid` only name the target in error messages (the kubelet writes the pod's full name and UID).
    The socket is closed when this returns.
    """
    if not ports or not all(0 < port < 65536 for port in ports):
        raise ValueError(f"port-forward needs one or more ports in 1..65535, got {list(ports)}")
    socket = ChannelSocket(ws, idle_timeout_seconds=idle_timeout_seconds)
    inputs = [InputBuffer(buffer_bytes) for _ in ports]
    tasks: list[asyncio.Task[None]] = []
    try:
        try:
            for index, port in enumerate(ports):
                prefix = port.to_bytes(2, "little")
                await socket.send(2 * index, prefix)
                await socket.send(2 * index + 1, prefix)
        except StreamClosed:
            return
        reader = asyncio.create_task(_receive(socket, inputs), name="websocket port-forward receive")
        tasks.append(reader)
        calls = {
            asyncio.create_task(
                _forward_one(socket, index, port, inputs[index], forward, (pod, uid)),
                name=f"websocket port-forward {port}",
            )
            for index, port in enumerate(ports)
        }
        tasks.extend(calls)
        while calls and not reader.done():
            _, calls = await asyncio.wait({*calls, reader}, return_when=asyncio.FIRST_COMPLETED)
            calls.discard(reader)
        if calls:
            log.debug("port-forward client gone; %d forwards get %s s to end", len(calls), client_gone_grace_seconds)
            await asyncio.wait(calls, timeout=client_gone_grace_seconds)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await socket.close(WSCloseCode.OK)
