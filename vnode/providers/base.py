"""The contract between vnode's controllers and a backend that runs pods (mock, Docker, ECI).

Controllers hand a provider a `ResolvedPod` (the pod as stored, with env and volume contents already resolved) and
receive `PodStatusUpdate`s through the `notify` callback given to `run`. Providers never see the Kubernetes API or a
wire protocol; they raise `vnode.errors` (InvalidPod and NotSupported are permanent, Retryable ones are retried).
Interactive calls (logs, exec, attach, port-forward) use the protocol-free types of `providers.streams`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from vnode.providers.streams import ByteStream, LogOptions, StreamIO, UsageSnapshot


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, pod: Mapping[str, Any]) -> PodRef:
        meta = pod["metadata"]
        return cls(meta.get("namespace", ""), meta["name"], meta.get("uid", ""))


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    # True when the value came from a Secret: it must never be logged.
    sensitive: bool = False


@dataclass(frozen=True)
class VolumeFile:
    path: str  # relative to the volume's root
    content: bytes = field(repr=False)
    mode: int = 0o644


@dataclass(frozen=True)
class ResolvedVolume:
    """A pod volume as the backend must provide it.

    kind `files`: configMap, secret, projected and downwardAPI volumes, already materialised as `files`.
    kind `emptyDir`: scratch space shared by the pod's containers (`medium`, `size_limit`).
    kind `other`: hostPath, nfs and the rest; `source` is the volume as written in the pod spec.
    """

    name: str
    kind: Literal["files", "emptyDir", "other"]
    files: tuple[VolumeFile, ...] = ()
    medium: str = ""
    size_limit: str | None = None
    source: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry from the pod's imagePullSecrets (a docker config's `auths` entry)."""

    registry: str  # the entry's key as written, e.g. "registry.example.com:5000" or "https://index.docker.io/v1/"
    username: str = field(repr=False)
    password: str = field(repr=False)


@dataclass(frozen=True)
class ResolvedPod:
    ref: PodRef
    pod: Mapping[str, Any] = field(repr=False)  # the stored pod; read-only
    env: Mapping[str, tuple[EnvVar, ...]] = field(default_factory=dict, repr=False)  # by container name
    volumes: Mapping[str, ResolvedVolume] = field(default_factory=dict, repr=False)  # by volume name
    registry_auth: tuple[RegistryAuth, ...] = field(default=(), repr=False)  # from spec.imagePullSecrets, in order

    @property
    def spec(self) -> Mapping[str, Any]:
        spec: Mapping[str, Any] = self.pod.get("spec") or {}
        return spec

    @property
    def containers(self) -> list[Mapping[str, Any]]:
        return list(self.spec.get("containers") or [])

    @property
    def init_containers(self) -> list[Mapping[str, Any]]:
        return list(self.spec.get("initContainers") or [])


ContainerStateKind = Literal["waiting", "running", "terminated"]


@dataclass(frozen=True)
class ContainerState:
    kind: ContainerStateKind
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    signal: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    container_id: str = ""


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    state: ContainerState
    ready: bool = False
    restart_count: int = 0
    image: str = ""
    image_id: str = ""
    container_id: str = ""
    started: bool | None = None
    last_state: ContainerState | None = None


PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]


@dataclass(frozen=True)
class ProviderEvent:
    """Something the backend wants recorded on the pod as a Kubernetes Event (e.g. Pulling, BackOff)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class PodStatusUpdate:
    """What the backend knows of a pod. Conditions are derived by the PodController, not by providers."""

    ref: PodRef
    phase: PodPhase
    containers: tuple[ContainerStatus, ...] = ()
    init_containers: tuple[ContainerStatus, ...] = ()
    reason: str = ""
    message: str = ""
    pod_ip: str = ""
    start_time: datetime | None = None
    # Facts about the backend instance to publish as pod annotations (e.g. ECI instance id, billed shape).
    annotations: Mapping[str, str] = field(default_factory=dict)
    events: tuple[ProviderEvent, ...] = ()
    # The backend instance's own state name (ECI: the group Status: Pending, Running, Restarting...), which billing
    # follows more closely than the pod phase; empty when the backend has none.
    backend_state: str = ""


@dataclass(frozen=True)
class NodeResources:
    """Capacity the virtual node advertises, as Kubernetes quantities."""

    cpu: str
    memory: str
    pods: str
    ephemeral_storage: str = ""
    extended: Mapping[str, str] = field(default_factory=dict)

    def as_quantities(self) -> dict[str, str]:
        out = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods, **self.extended}
        if self.ephemeral_storage:
            out["ephemeral-storage"] = self.ephemeral_storage
        return out


@dataclass(frozen=True)
class NodeDescription:
    """What nodeInfo and labels say about the backend."""

    provider: str  # short name: mock, docker, eci (label vnode.io/provider, the taint's value)
    container_runtime_version: str  # e.g. mock://0.1.0
    os_image: str = ""
    kernel_version: str = ""
    operating_system: str = "linux"
    architecture: str = "amd64"


StatusCallback = Callable[[PodStatusUpdate], None]


class Provider(Protocol):
    """A backend running the virtual node's pods. Calls are keyed by pod UID and must be idempotent."""

    def describe(self) -> NodeDescription: ...

    def capacity(self) -> NodeResources: ...

    async def run(self, notify: StatusCallback) -> None:
        """Long-lived: push status changes through `notify` (which never blocks) until cancelled."""
        ...

    async def create_pod(self, pod: ResolvedPod) -> None:
        """Start the pod. Creating a pod that already exists (same UID) is not an error."""
        ...

    async def update_pod(self, pod: ResolvedPod) -> None:
        """Apply spec changes the backend supports (e.g. a container image); NotSupported otherwise."""
        ...

    async def delete_pod(self, ref: PodRef, grace_period_seconds: int) -> None:
        """Stop and remove the pod (SIGTERM, then kill after the grace period). Unknown pods are not an error;
        the terminal status arrives through `notify`."""
        ...

    async def list_pods(self) -> list[PodStatusUpdate]:
        """Everything this node owns in the backend, for start-up reconciliation."""
        ...

    async def ping(self) -> None:
        """Cheap health check; raises BackendUnavailable while the backend cannot serve."""
        ...

    # Streams: called by the kubelet API for pods this node runs. NotFound names a missing pod or container.

    def container_logs(self, ref: PodRef, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        """The container's log (stdout and stderr interleaved) as the options select it; with `follow`, keeps
        yielding until the container ends or the caller stops iterating."""
        ...

    async def exec(self, ref: PodRef, container: str, command: Sequence[str], io: StreamIO) -> int:
        """Run `command` in the container with `io`'s streams and return its exit code. Cancellation (the client
        left) stops the session; processes the command started in the background may outlive it."""
        ...

    async def attach(self, ref: PodRef, container: str, io: StreamIO) -> int:
        """Connect `io` to the container's main process; return its exit code when it ends."""
        ...

    async def port_forward(self, ref: PodRef, port: int, stream: ByteStream) -> None:
        """Copy `stream` to and from `port` inside the pod until both directions are closed."""
        ...

    async def stats(self) -> UsageSnapshot:
        """Current resource usage of every running pod."""
        ...
