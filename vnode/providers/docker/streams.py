"""The stream side of the Docker provider: logs, exec, attach, port-forward and usage stats of a node's pods.

It owns finding a pod's containers by their labels (the current instance of a container and the previous one), the
pod's network namespace for port-forward, and turning the engine's stats into a `UsageSnapshot`. Log reading and
exec/attach sessions live in `logs.py` and `exec.py`. It must not create, change or remove containers.

Port-forward enters the sandbox container's network namespace from this process (`setns` in a helper thread), so
it needs the engine on this host and CAP_SYS_ADMIN; a remote engine cannot port-forward this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import re
import socket
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiodocker import Docker
from aiodocker.containers import DockerContainer
from aiodocker.exceptions import DockerError

from vnode.clock import Clock
from vnode.errors import BackendUnavailable, NotFound, VnodeError
from vnode.providers.base import PodRef
from vnode.providers.docker import naming
from vnode.providers.docker.exec import run_attach, run_exec
from vnode.providers.docker.logs import read_logs
from vnode.providers.streams import (
    ByteStream,
    ContainerUsage,
    LogOptions,
    PodUsage,
    StreamClosed,
    StreamIO,
    UsageSnapshot,
)

CLONE_NEWNET = 0x40000000
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: the container never started
READ_BYTES = 64 * 1024


class DockerStreams:
    def __init__(self, docker: Docker, node_name: str, clock: Clock) -> None:
        self._docker = docker
        self._node = node_name
        self._clock = clock

    async def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncGenerator[bytes, None]:
        with _translated():
            target = await self._container(ref, container, previous=options.previous)
            details = await target.show()
            tty = bool((details.get("Config") or {}).get("Tty"))
            async with contextlib.aclosing(read_logs(self._docker, target.id, tty=tty, options=options)) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        with _translated():
            return await run_exec(await self._running(ref, container), command, io, self._clock)

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        with _translated():
            return await run_attach(await self._running(ref, container), io)

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        with _translated():
            sandbox = next((s for s in await self._summaries(ref)
                            if (s.get("Labels") or {}).get(naming.LABEL_ROLE) == "sandbox"), None)
            if sandbox is None:
                raise NotFound(f'pod "{ref.key}" not found')
            details = await self._docker.containers.container(sandbox["Id"]).show()
            pid = int((details.get("State") or {}).get("Pid") or 0)
            if pid <= 0:
                raise NotFound(f'pod "{ref.key}" is not running')
        sock = await connect_in_netns(pid, port)
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(_client_to_pod(stream, writer), name=f"port-forward in {ref.key}:{port}")
                group.create_task(_pod_to_client(reader, stream), name=f"port-forward out {ref.key}:{port}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stats(self) -> UsageSnapshot:
        with _translated():
            now = self._clock.now()
            summaries = await self._list(naming.node_filter(self._node))
            running = [s for s in summaries if s.get("State") == "running"
                       and (s.get("Labels") or {}).get(naming.LABEL_ROLE) == "app"]
            samples = await asyncio.gather(*(self._sample(s["Id"]) for s in running))
        by_pod: dict[PodRef, list[ContainerUsage]] = {}
        for details, sample in samples:
            key = naming.key_of((details.get("Config") or {}).get("Labels") or {})
            if key is not None and sample:
                by_pod.setdefault(key.ref, []).append(_usage(key.container, details, sample))
        return UsageSnapshot(time=now, pods=tuple(
            PodUsage(ref, min(u.start_time for u in usages), tuple(usages)) for ref, usages in by_pod.items()))

    # Lookups

    async def _list(self, filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        found = await self._docker.containers.list(all=True, filters=json.dumps(filters))
        # naming.latest reads the engine's summaries; DockerContainer offers only item access to them.
        return [{key: item[key] for key in ("Id", "Labels", "State") if key in item} for item in found]

    async def _summaries(self, ref: PodRef) -> list[dict[str, Any]]:
        return await self._list(naming.pod_filter(self._node, ref.uid))

    async def _container(self, ref: PodRef, container: str, *, previous: bool = False) -> DockerContainer:
        instances = naming.latest(await self._summaries(ref), container)
        if previous:
            if len(instances) < 2:
                raise NotFound(f'previous terminated container "{container}" in pod "{ref.name}" not found')
            return self._docker.containers.container(instances[1]["Id"])
        if not instances:
            raise NotFound(f'container "{container}" in pod "{ref.name}" is waiting to start: ContainerCreating')
        return self._docker.containers.container(instances[0]["Id"])

    async def _running(self, ref: PodRef, container: str) -> DockerContainer:
        instances = naming.latest(await self._summaries(ref), container)
        if not instances or instances[0].get("State") != "running":
            raise NotFound(f'container "{container}" in pod "{ref.name}" is not running')
        return self._docker.containers.container(instances[0]["Id"])

    async def _sample(self, container_id: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        """(inspect, one stats sample) of a container."""
        target = self._docker.containers.container(container_id)
        details, samples = await asyncio.gather(target.show(), target.stats(stream=False))
        return details, (samples[0] if samples else {})


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Engine failures as vnode errors: a missing container is NotFound, an unreachable engine BackendUnavailable."""
    try:
        yield
    except DockerError as exc:
        if exc.status in (404, 409):  # 409: the container is not running (exec, attach)
            raise NotFound(str(exc.message)) from exc
        if exc.status >= 500:
            raise BackendUnavailable(f"docker engine: {exc.message}") from exc
        raise VnodeError(f"docker engine: {exc.message}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise BackendUnavailable(f"docker engine unreachable: {exc}") from exc


async def connect_in_netns(pid: int, port: int) -> socket.socket:
    # A thread of its own, ended afterwards: if it could not return to its namespace it must not serve anyone else.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vnode-netns")
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, _connect_from_thread, pid, port)
    finally:
        executor.shutdown(wait=False)


def _connect_from_thread(pid: int, port: int) -> socket.socket:
    """Connect to 127.0.0.1:port inside the network namespace of process `pid` (setns affects this thread only)."""
    libc = ctypes.CDLL(None, use_errno=True)
    namespace = f"/proc/{pid}/ns/net"
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(namespace, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NotFound(f"the pod's network namespace {namespace} is gone: its sandbox stopped") from exc
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise VnodeError(f"cannot enter the network namespace {namespace}: {os.strerror(code)}")
        finally:
            os.close(target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # sockets stay in the namespace they were made in
            try:
                sock.connect(("127.0.0.1", port))
            except OSError as exc:
                sock.close()
                reason = "connection refused" if exc.errno == errno.ECONNREFUSED else os.strerror(exc.errno or 0)
                # The kubelet's words: failed to connect to localhost:<port> inside namespace "<netns>", ...
                raise VnodeError(f'failed to connect to localhost:{port} inside namespace "{namespace}", '
                                 f"IPv4: dial tcp4 127.0.0.1:{port}: connect: {reason}") from exc
            sock.setblocking(False)
            return sock
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot return to the original network namespace")
    finally:
        os.close(home)


async def _client_to_pod(stream: ByteStream, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await stream.read():
            writer.write(chunk)
            await writer.drain()
    except StreamClosed:
        pass  # the client went away: as good as its EOF
    except ConnectionError:
        return  # the pod side reset the connection; the other direction sees it too
    if writer.can_write_eof() and not writer.is_closing():
        writer.write_eof()  # the client's EOF becomes the pod side's EOF; its answer may still come


async def _pod_to_client(reader: asyncio.StreamReader, stream: ByteStream) -> None:
    try:
        while chunk := await reader.read(READ_BYTES):
            await stream.write(chunk)
        await stream.close_write()
    except (StreamClosed, ConnectionError):
        return



def _usage(name: str, details: Mapping[str, Any], sample: Mapping[str, Any]) -> ContainerUsage:
    """One container's usage from its inspect and a stats sample (`GET /containers/{id}/stats?stream=0`)."""
    cpu = sample.get("cpu_stats") or {}
    before = sample.get("precpu_stats") or {}
    total = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0)
    memory = sample.get("memory_stats") or {}
    figures = memory.get("stats") or {}
    usage = int(memory.get("usage") or 0)
    # The kubelet's working set is usage minus inactive file pages (cgroup v1 `total_inactive_file`, v2
    # `inactive_file`), as `docker stats` computes it.
    inactive = int(figures.get("total_inactive_file", figures.get("inactive_file", 0)) or 0)
    rss = figures.get("total_rss", figures.get("anon"))
    limit = int((details.get("HostConfig") or {}).get("Memory") or 0)  # 0: no limit (the engine then reports RAM)
    return ContainerUsage(
        name=name, start_time=_parse_time((details.get("State") or {}).get("StartedAt")),
        # Never 0: metrics-server drops a pod with a zero value.
        cpu_usage_core_nanoseconds=max(1, total), memory_working_set_bytes=max(1, usage - inactive),
        cpu_usage_nano_cores=_nano_cores(cpu, before), memory_usage_bytes=usage or None,
        memory_rss_bytes=None if rss is None else int(rss), memory_limit_bytes=limit or None)


def _nano_cores(cpu: Mapping[str, Any], before: Mapping[str, Any]) -> int | None:
    """The CPU rate between the sample and the engine's previous one (present when stream=0 waited for two)."""
    system, system_before = cpu.get("system_cpu_usage"), before.get("system_cpu_usage")
    if not system or not system_before or system <= system_before:
        return None
    used = int((cpu.get("cpu_usage") or {}).get("total_usage") or 0) - int(
        (before.get("cpu_usage") or {}).get("total_usage") or 0)
    cpus = int(cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1)
    # system_cpu_usage counts every CPU of the host, in ns: the share times the CPUs is the rate in cores.
    return max(1, int(max(0, used) / (system - system_before) * cpus * 1_000_000_000))


def _parse_time(text: object) -> datetime:
    """The engine's RFC 3339 time (nanoseconds) as a microsecond datetime; the epoch when absent."""
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None or text == _ZERO_TIME:
        return datetime.fromtimestamp(0, UTC)
    whole, fraction, zone = match.groups()
    micro = f".{fraction[:6].ljust(6, '0')}" if fraction else ""
    return datetime.fromisoformat(whole + micro + zone.replace("Z", "+00:00")).astimezone(UTC)
