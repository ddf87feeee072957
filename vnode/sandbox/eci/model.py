"""The emulator's container groups as immutable specs: what CreateContainerGroup asked for, nothing that happened.

What a group is doing (status, container states, events, logs) belongs to its runtime (`runtime.GroupRuntime`);
this module only holds the request's content, in the shape runtimes and `views` need. It must not parse request
parameters, render responses or compute state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Probe:
    """A ReadinessProbe/LivenessProbe/StartupProbe: exactly one of exec, http_get (path, port, scheme), tcp_port."""

    exec_command: tuple[str, ...] = ()
    http_path: str = ""
    http_port: int = 0
    http_scheme: str = ""
    tcp_port: int = 0
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class SecurityContext:
    read_only_root_filesystem: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()


@dataclass(frozen=True)
class Handler:
    """A lifecycle PostStart/PreStop handler (ECI's flat `Lifecycle{PostStart,PreStop}Handler*` keys)."""

    exec_command: tuple[str, ...] = ()
    http_host: str = ""
    http_port: int = 0
    http_path: str = ""
    http_scheme: str = ""
    http_headers: tuple[tuple[str, str], ...] = ()
    tcp_host: str = ""
    tcp_port: int = 0


@dataclass(frozen=True)
class VolumeMount:
    name: str
    mount_path: str
    sub_path: str = ""
    read_only: bool = False
    mount_propagation: str = ""


@dataclass(frozen=True)
class EnvVar:
    key: str
    value: str = ""
    field_path: str = ""  # FieldRef.FieldPath: ECI documents only status.podIP


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    cpu: float = 0.0
    memory: float = 0.0
    gpu: int = 0
    commands: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # plain Key/Value pairs, as a process sees them
    env_vars: tuple[EnvVar, ...] = ()  # every EnvironmentVar as given, FieldRef included
    working_dir: str = ""
    image_pull_policy: str = "IfNotPresent"
    ports: tuple[tuple[int, str], ...] = ()
    volume_mounts: tuple[VolumeMount, ...] = ()
    readiness_probe: Probe | None = None
    liveness_probe: Probe | None = None
    startup_probe: Probe | None = None
    security_context: SecurityContext | None = None
    post_start: Handler | None = None
    pre_stop: Handler | None = None
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    termination_message_path: str = ""
    termination_message_policy: str = ""


@dataclass(frozen=True)
class ConfigFile:
    path: str
    content: bytes = field(repr=False)  # decoded from the request's base64
    mode: int | None = None


@dataclass(frozen=True)
class Volume:
    name: str
    type: str  # EmptyDirVolume | NFSVolume | ConfigFileVolume | HostPathVolume | DiskVolume | FlexVolume
    medium: str = ""  # EmptyDirVolume.Medium
    size_limit: str = ""  # EmptyDirVolume.SizeLimit, e.g. "1Gi"
    server: str = ""  # NFSVolume.Server
    path: str = ""  # NFSVolume.Path, HostPathVolume.Path
    read_only: bool = False  # NFSVolume.ReadOnly
    files: tuple[ConfigFile, ...] = ()
    default_mode: int | None = None  # ConfigFileVolume.DefaultMode
    host_path_type: str = ""  # HostPathVolume.Type
    disk_id: str = ""
    disk_size: int = 0
    fs_type: str = ""
    flex_driver: str = ""
    flex_options: str = ""


@dataclass(frozen=True)
class RegistryCredential:
    server: str
    user_name: str
    password: str = field(repr=False)  # never echoed, never logged


@dataclass(frozen=True)
class DnsConfig:
    name_servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Spot:
    strategy: str = "NoSpot"  # NoSpot | SpotWithPriceLimit | SpotAsPriceGo
    price_limit: float | None = None
    duration: int | None = None  # protection hours


@dataclass(frozen=True)
class ContainerState:
    state: str  # Waiting | Running | Terminated (ECI's CurrentState.State)
    reason: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    exit_code: int | None = None
    restart_count: int = 0
    last: ContainerState | None = None
    message: str = ""


@dataclass(frozen=True)
class ContainerGroup:
    id: str
    name: str
    seq: int  # creation order: paging cursors point into it
    region_id: str
    zone_id: str
    cpu: float
    memory: float
    restart_policy: str
    tags: tuple[tuple[str, str], ...]
    containers: tuple[ContainerSpec, ...]
    init_containers: tuple[ContainerSpec, ...]
    volumes: tuple[Volume, ...]
    created: datetime
    intranet_ip: str  # the address the group gets once scheduled
    extra: tuple[tuple[str, str], ...] = ()  # echoed group fields: VSwitchId, SecurityGroupId, InstanceType...
    instance_type: str = ""
    spot: Spot = Spot()
    registry_credentials: tuple[RegistryCredential, ...] = ()
    dns_policy: str = ""
    dns_config: DnsConfig | None = None
    host_aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (ip, hostnames)
    termination_grace_period_seconds: int | None = None
    active_deadline_seconds: int | None = None
    ephemeral_storage: int = 0
    sysctls: tuple[tuple[str, str], ...] = ()

    def spec(self, name: str) -> ContainerSpec | None:
        """The app or init container called `name`."""
        return next((c for c in self.containers + self.init_containers if c.name == name), None)
