"""One probe attempt against a running container: exec in it, or TCP / HTTP from inside the pod's network namespace.

`EngineCheck` is the `probes.Check` a `PodRunner` gives each container's probes. exec runs through the engine's
exec API (exit 0 is success). tcpSocket and httpGet connect from this process inside the sandbox's network
namespace (`streams.connect_in_netns`, which needs the engine on this host), so the target image needs no tools;
an explicit `host` is dialled from vnode's own namespace, as the kubelet dials it from the node. Timeouts are the
caller's (`ContainerProbes`). It must not change containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import aiodocker
import aiohttp

from vnode.clock import Clock
from vnode.errors import VnodeError
from vnode.providers.docker.exec import run_exec
from vnode.providers.docker.probes import ProbeResult, ProbeSpec
from vnode.providers.docker.streams import connect_in_netns
from vnode.providers.streams import ResizeQueue, StreamIO

OUTPUT_LIMIT = 10 * 1024  # the kubelet keeps this much of a probe's output
USER_AGENT = "kube-probe/1.30"


class _Collected:
    def __init__(self) -> None:
        self.data = bytearray()

    async def write(self, data: bytes) -> None:
        if len(self.data) < OUTPUT_LIMIT:
            self.data += data[:OUTPUT_LIMIT - len(self.data)]


class EngineCheck:
    def __init__(self, docker: aiodocker.Docker, container_id: str, *, sandbox_pid: int, pod_ip: str,
                 ports: Mapping[str, int], clock: Clock) -> None:
        self._docker, self._container_id, self._pid = docker, container_id, sandbox_pid
        self._pod_ip, self._ports, self._clock = pod_ip, ports, clock

    async def __call__(self, spec: ProbeSpec) -> ProbeResult:
        if spec.handler == "exec":
            return await self._exec([str(part) for part in spec.action.get("command") or []])
        port = self._port(spec.action.get("port"))
        if port is None:
            return ProbeResult("error", f"couldn't find port {spec.action.get('port')!r} in the container's ports")
        host = str(spec.action.get("host") or "")
        where = f"{host or self._pod_ip or '127.0.0.1'}:{port}"
        if spec.handler == "tcpSocket":
            try:
                _, writer = await self._connect(host, port)
            except (OSError, VnodeError) as exc:
                return ProbeResult("failure", f"dial tcp {where}: {_reason(exc)}")
            await _close(writer)
            return ProbeResult("success")
        return await self._http(spec.action, host, port, where)

    async def _exec(self, command: list[str]) -> ProbeResult:
        output = _Collected()
        io = StreamIO(stdin=None, stdout=output, stderr=output, tty=False, resizes=ResizeQueue())
        try:
            code = await run_exec(self._docker.containers.container(self._container_id), command, io, self._clock)
        except (aiodocker.DockerError, aiohttp.ClientError, VnodeError) as exc:
            return ProbeResult("error", str(exc))
        text = output.data.decode(errors="replace")
        return ProbeResult("success" if code == 0 else "failure", text)

    async def _http(self, action: Mapping[str, Any], host: str, port: int, where: str) -> ProbeResult:
        scheme = str(action.get("scheme") or "HTTP").lower()
        path = str(action.get("path") or "/")
        path = path if path.startswith("/") else f"/{path}"
        url = f"{scheme}://{where}{path}"
        headers = {"Host": where, "User-Agent": USER_AGENT, "Accept": "*/*"}
        for header in action.get("httpHeaders") or []:
            headers[str(header.get("name"))] = str(header.get("value", ""))
        headers["Connection"] = "close"  # one request per connection, as the kubelet's prober
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        try:
            reader, writer = await self._connect(host, port, tls=scheme == "https")
        except (OSError, VnodeError) as exc:
            return ProbeResult("failure", f'Get "{url}": dial tcp {where}: {_reason(exc)}')
        try:
            writer.write(request.encode("latin-1"))
            await writer.drain()
            line = (await reader.readline()).decode("latin-1").split()
        except OSError as exc:
            return ProbeResult("failure", f'Get "{url}": {_reason(exc)}')
        finally:
            await _close(writer)
        if len(line) < 2 or not line[0].startswith("HTTP/") or not line[1].isdigit():
            return ProbeResult("failure", f'Get "{url}": malformed HTTP response')
        code = int(line[1])
        # 2xx and 3xx are success (the kubelet follows same-host redirects; a 3xx is never a failure).
        if 200 <= code < 400:
            return ProbeResult("success")
        return ProbeResult("failure", f"HTTP probe failed with statuscode: {code}")

    def _port(self, port: object) -> int | None:
        if isinstance(port, int):
            return port
        if isinstance(port, str) and port.isdigit():
            return int(port)
        return self._ports.get(str(port))

    async def _connect(self, host: str, port: int, *,
                       tls: bool = False) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context: ssl.SSLContext | None = None
        if tls:
            # The kubelet's HTTPS probes do not verify the server's certificate.
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if host:
            return await asyncio.open_connection(host, port, ssl=context)
        sock: socket.socket = await connect_in_netns(self._pid, port)
        try:
            return await asyncio.open_connection(sock=sock, ssl=context, server_hostname="" if tls else None)
        except BaseException:
            sock.close()
            raise


def _reason(exc: BaseException) -> str:
    """Go's wording of a failed connection (`connect: connection refused`)."""
    cause = exc.__cause__ if isinstance(exc, VnodeError) and isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, OSError) and cause.strerror:
        return f"connect: {cause.strerror.lower()}"
    return str(cause)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
