"""`DelegatingProvider`: a Provider that passes every call to `inner`, for wrappers that change only a few calls
(e.g. the cost recorder). It must not add behaviour of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from vnode.providers.base import (
    NodeDescription,
    NodeResources,
    PodRef,
    PodStatusUpdate,
    Provider,
    ResolvedPod,
    StatusCallback,
)

if TYPE_CHECKING:
    from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot


class DelegatingProvider:
    def __init__(self, inner: Provider) -> None:
        self.inner = inner

    def describe(self) -> NodeDescription:
        return self.inner.describe()

    def capacity(self) -> NodeResources:
        return self.inner.capacity()

    async def run(self, notify: StatusCallback) -> None:
        await self.inner.run(notify)

    async def create_pod(self, pod: ResolvedPod) -> None:
        await self.inner.create_pod(pod)

    async def update_pod(self, pod: ResolvedPod) -> None:
        await self.inner.update_pod(pod)

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        await self.inner.delete_pod(ref, grace_period_seconds)

    async def list_pods(self) -> list[PodStatusUpdate]:
        return await self.inner.list_pods()

    async def ping(self) -> None:
        await self.inner.ping()

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        return self.inner.container_logs(ref, container, options)

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        return await self.inner.exec(ref, container, command, io)

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        return await self.inner.attach(ref, container, io)

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        await self.inner.port_forward(ref, port, stream)

    async def stats(self) -> UsageSnapshot:
        return await self.inner.stats()
