"""Every option of vnode in one validated, frozen settings tree.

Precedence: defaults < YAML file (`--config`) < `VNODE_*` environment (nested with `__`, e.g.
`VNODE_SANDBOX__API_PORT`) < command-line flags. Each field's description names its unit and its flag.
A bad value fails at start with a `ConfigError` naming the option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from vnode.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MockProviderSettings(_Section):
    """The in-memory provider: pods start instantly unless told otherwise; nothing really runs."""

    kind: Literal["mock"] = "mock"
    start_delay_seconds: float = Field(0.0, ge=0, description="Seconds from create to Running.")
    fail_images: tuple[str, ...] = Field((), description="Images whose pull fails (ErrImagePull, then "
                                         "ImagePullBackOff), to try failure handling.")
    transient_create_failures: int = Field(0, ge=0, description="How many create calls fail with a retryable "
                                           "error before creates succeed, to try retry handling.")
    capacity_cpu: str = Field("1000", description="Node cpu capacity (Kubernetes quantity).")
    capacity_memory: str = Field("4Ti", description="Node memory capacity (Kubernetes quantity).")
    capacity_pods: str = Field("5000", description="How many pods the node takes.")


class DockerProviderSettings(_Section):
    """A Docker engine runs the pods: one sandbox container per pod holds the network namespace, every container
    of the pod joins it."""

    kind: Literal["docker"] = "docker"
    host: str | None = Field(None, description="Docker Engine API address (unix:///path or tcp://host:port). "
                             "Default: DOCKER_HOST, then unix:///var/run/docker.sock.")
    pause_image: str = Field("registry.k8s.io/pause:3.9", description="Image of each pod's sandbox container "
                             "(holds the pod's network namespace; its command must sleep forever).")
    network: str = Field("bridge", description="Docker network of the pod sandboxes (bridge, none, or a "
                         "user-defined network); the pod IP is the sandbox's address on it.")
    volumes_dir: Path = Field(Path(".vnode/docker-volumes"), description="Directory (on the engine's host) holding "
                              "pod volumes: emptyDir, configMap, secret, projected, downwardAPI. Removed per pod.")
    allow_host_path: bool = Field(False, description="Let pods mount hostPath volumes from the engine's host.")
    allow_privileged: bool = Field(False, description="Let pods run privileged containers.")
    restart_backoff_seconds: float = Field(10.0, gt=0, description="First delay before restarting a crashed "
                                           "container (the kubelet's 10 s, doubling).")
    restart_backoff_max_seconds: float = Field(300.0, gt=0, description="Longest restart delay (CrashLoopBackOff).")
    image_pull_backoff_seconds: float = Field(10.0, gt=0, description="First delay before retrying a failed pull "
                                              "(ImagePullBackOff, doubling).")
    image_pull_backoff_max_seconds: float = Field(300.0, gt=0, description="Longest image pull retry delay.")
    capacity_cpu: str | None = Field(None, description="Node cpu capacity; default: the engine's CPUs.")
    capacity_memory: str | None = Field(None, description="Node memory capacity; default: the engine's memory.")
    capacity_pods: str = Field("110", description="How many pods the node takes.")


class EciThrottleSettings(_Section):
    """A token bucket: `burst` calls at once, refilled at `per_second`."""

    burst: int = Field(ge=1, description="Bucket size (calls).")
    per_second: float = Field(gt=0, description="Refill rate (calls per second).")


def _eci_quota(per_minute: int) -> EciThrottleSettings:
    return EciThrottleSettings(burst=per_minute, per_second=per_minute / 60)


def _eci_throttles() -> dict[str, EciThrottleSettings]:
    """ECI's published per-account quotas (eci.md §5): create and delete are token buckets, the rest per minute."""
    return {
        "CreateContainerGroup": EciThrottleSettings(burst=100, per_second=20),
        "DeleteContainerGroup": EciThrottleSettings(burst=100, per_second=20),
        "DescribeContainerGroups": _eci_quota(2000),
        "DescribeContainerGroupStatus": _eci_quota(10000),
        "DescribeContainerGroupEvents": _eci_quota(10000),
        "DescribeMultiContainerGroupMetric": _eci_quota(2000),
        "DescribeContainerGroupMetric": _eci_quota(2000),
        "UpdateContainerGroup": _eci_quota(1000),
        "RestartContainerGroup": _eci_quota(1000),
        "DescribeContainerGroupPrice": _eci_quota(1000),
        "ExecContainerCommand": _eci_quota(500),
        "DescribeContainerLog": _eci_quota(500),
    }


class EciProviderSettings(_Section):
    """Alibaba Cloud Elastic Container Instance: every pod becomes one pay-per-use container group. Credentials come
    from ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET (/ _SECURITY_TOKEN for a RAM role), or files of those names in
    `credentials_dir`; never from this file."""

    kind: Literal["eci"] = "eci"
    region_id: str = Field("cn-hangzhou", min_length=1, description="ECI region (RegionId).")
    endpoint: str | None = Field(None, description="API endpoint: a bare host is called over HTTPS; an http:// URL "
                                 "(the ECI emulator) is used as is. Default: the SDK's endpoint for the region.")
    credentials_dir: Path | None = Field(None, description="Directory holding files named like the credential "
                                         "variables (a mounted Secret), re-read when they change.")
    cluster_name: str = Field("default", min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                              description="Tag on every group vnode creates; with the node name it tells this "
                              "node's groups from any other's in the account.")
    security_group_id: str = Field("", description="SecurityGroupId of every group (annotation "
                                   "k8s.aliyun.com/eci-security-group overrides).")
    vswitch_ids: tuple[str, ...] = Field((), description="VSwitchIds to place groups in, tried in order on stock "
                                         "shortage (annotation k8s.aliyun.com/eci-vswitch overrides).")
    zone_id: str | None = Field(None, description="ZoneId, when no vSwitch decides it.")
    schedule_strategy: Literal["VSwitchOrdered", "VSwitchRandom"] = Field("VSwitchOrdered", description="How ECI "
                                                                          "picks among several vSwitches.")
    capacity_cpu: str = Field("1000", description="Node cpu capacity (Kubernetes quantity): the account's vCPU "
                              "quota that vnode may use.")
    capacity_memory: str = Field("4Ti", description="Node memory capacity (Kubernetes quantity).")
    capacity_pods: str = Field("1000", description="How many pods (container groups) the node takes.")
    capacity_gpu: str | None = Field(None, description="nvidia.com/gpu capacity; none advertised when unset.")
    status_poll_seconds: float = Field(5.0, gt=0, description="Seconds between DescribeContainerGroupStatus polls "
                                       "(SinceSecond window, tag-filtered: calls do not grow with pods).")
    full_resync_seconds: float = Field(60.0, gt=0, description="Seconds between full tag-filtered status lists "
                                       "that catch anything a windowed poll missed.")
    events_poll_seconds: float = Field(10.0, gt=0, description="Seconds between DescribeContainerGroupEvents polls "
                                       "(ECI events become pod Events).")
    log_poll_seconds: float = Field(2.0, gt=0, description="Seconds between DescribeContainerLog calls of a "
                                    "`kubectl logs -f` (ECI has no log streaming).")
    orphan_sweep_seconds: float = Field(60.0, gt=0, description="Seconds between sweeps deleting groups tagged for "
                                        "this node whose pod no longer exists (they cost money).")
    fail_on_create_error: bool = Field(False, description="Default of annotation "
                                       "k8s.aliyun.com/pod-fail-on-create-err: a create ECI refuses for good fails "
                                       "the pod instead of leaving it Pending with retries.")
    quotas: dict[str, EciThrottleSettings] = Field(default_factory=_eci_throttles,
                                                   description="Client-side token buckets per action (ECI's "
                                                   "published quotas); an action not listed is not limited.")
    max_attempts: int = Field(6, ge=1, description="Attempts of one API call on throttling, 5xx and network errors.")
    max_workers: int = Field(16, ge=1, description="Threads running SDK calls (the SDK blocks).")
    connect_timeout_seconds: float = Field(5.0, gt=0, description="SDK connect timeout.")
    read_timeout_seconds: float = Field(10.0, gt=0, description="SDK read timeout.")


ProviderSettings = Annotated[MockProviderSettings | DockerProviderSettings | EciProviderSettings,
                             Field(discriminator="kind")]


class NodeSettings(_Section):
    name: str = Field("vnode", min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
                      description="The Node object's name. Flag --node-name.")
    internal_ip: str | None = Field(None, description="The node's InternalIP address: where the API server reaches "
                                    "the kubelet API. Default: VNODE_POD_IP (the downward API's status.podIP when "
                                    "vnode runs in a pod), else the address of the default route's interface.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra node labels.")
    taint_enabled: bool = Field(True, description="Taint the node so only pods that tolerate it land here. "
                                "Flag --disable-taint turns it off.")
    taint_key: str = Field("virtual-kubelet.io/provider", description="The taint's key.")
    taint_value: str | None = Field(None, description="The taint's value; default: the provider's name.")
    taint_effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"
    lease_duration_seconds: int = Field(40, ge=1, description="The Lease's leaseDurationSeconds.")
    lease_renew_seconds: float = Field(10.0, gt=0, description="Seconds between Lease renewals.")
    status_update_seconds: float = Field(60.0, gt=0, description="Longest time between node status writes.")
    ping_interval_seconds: float = Field(10.0, gt=0, description="Seconds between backend health checks.")
    ping_timeout_seconds: float = Field(5.0, gt=0, description="A health check slower than this counts as failed.")


class KubeletSettings(_Section):
    """The kubelet HTTPS API (logs, exec, attach, port-forward, stats) that kube-apiserver calls on the node."""

    port: int = Field(10250, ge=0, le=65535, description="Port of the kubelet HTTPS API (published in the Node's "
                      "daemonEndpoints; 0 picks a free one). Flag --kubelet-port.")
    address: str = Field("0.0.0.0", description="Address the kubelet API listens on.")
    tls_cert_file: Path | None = Field(None, description="Serving certificate (PEM, may hold the chain). Unset: a "
                                       "self-signed certificate for every node address is made at start. Flag "
                                       "--tls-cert-file.")
    tls_key_file: Path | None = Field(None, description="Private key of tls_cert_file (PEM). Flag "
                                      "--tls-private-key-file.")
    client_ca_file: Path | None = Field(None, description="CA bundle that client certificates must chain to "
                                        "(the kubelet's --client-ca-file). Once set, a certificate that does not "
                                        "verify is refused. Flag --client-ca-file.")
    authentication_webhook: bool = Field(True, description="Authenticate bearer tokens with a TokenReview.")
    authentication_cache_ttl_seconds: float = Field(120.0, ge=0, description="How long a TokenReview answer is "
                                                    "reused.")
    anonymous: bool = Field(False, description="Serve requests with no credentials as system:anonymous (they are "
                            "still authorized).")
    authorization_mode: Literal["Webhook", "AlwaysAllow"] = Field("Webhook", description="Webhook: ask the API "
                                                                  "server with a SubjectAccessReview.")
    authorized_cache_ttl_seconds: float = Field(300.0, ge=0, description="How long an allow is reused.")
    unauthorized_cache_ttl_seconds: float = Field(30.0, ge=0, description="How long a deny is reused.")
    stream_creation_timeout_seconds: float = Field(30.0, gt=0, description="Longest wait for a client to open "
                                                   "every stream of an exec, attach or port-forward session.")
    stream_idle_timeout_seconds: float = Field(4 * 3600.0, gt=0, description="A streaming session with no "
                                               "traffic for this long is closed.")
    declare_websockets: bool = Field(True, description="Declare ExtendWebSocketsToKubelet in the Node's "
                                     "status.declaredFeatures, so API servers (1.36+) pass WebSocket exec, attach "
                                     "and port-forward straight to vnode instead of translating them to SPDY.")


class KubeSettings(_Section):
    kubeconfig: Path | None = Field(None, description="Kubeconfig file; default: KUBECONFIG, then the in-cluster "
                                    "service account, then ~/.kube/config. Flag --kubeconfig.")
    context: str | None = Field(None, description="Kubeconfig context. Flag --context.")
    qps: float = Field(50.0, ge=0, description="API client requests per second (0: unlimited), as the kubelet's "
                       "--kube-api-qps.")
    burst: int = Field(100, ge=1, description="API client burst, as the kubelet's --kube-api-burst.")


class PodSettings(_Section):
    workers: int = Field(10, ge=1, description="Pods synced to the provider concurrently.")
    retry_base_seconds: float = Field(0.2, gt=0, description="First retry delay for a pod whose sync failed.")
    retry_max_seconds: float = Field(60.0, gt=0, description="Longest retry delay for a failing pod.")


class SandboxSettings(_Section):
    state_dir: Path = Field(Path(".vnode/sandbox"), description="Where the CA, tokens and kubeconfig live. "
                            "Flag --state-dir.")
    api_host: str = Field("127.0.0.1", description="Address the sandbox API server listens on. Flag --api-host.")
    api_port: int = Field(6443, ge=0, le=65535, description="Port of the sandbox API server; 0 picks a free one. "
                          "Flag --api-port.")
    node_monitor_grace_seconds: float = Field(40.0, gt=0, description="Seconds without a Lease renewal or "
                                              "heartbeat before a node is marked Unknown and tainted unreachable.")
    node_monitor_period_seconds: float = Field(5.0, gt=0, description="Seconds between node health checks.")
    watch_timeout_seconds: float = Field(1800.0, gt=0, description="Longest a watch stream stays open.")
    bookmark_interval_seconds: float = Field(60.0, gt=0, description="Seconds between watch bookmarks.")
    watch_history: int = Field(20_000, ge=100, description="Events kept per resource for watch resumption; older "
                               "resourceVersions get 410 Gone.")


class EciInstanceTypePrice(_Section):
    """One ECS instance type a group can run on (`InstanceType`) and its pay-as-you-go list price."""

    cpu: float = Field(gt=0, description="vCPUs of the type.")
    memory: float = Field(gt=0, description="Memory of the type (GiB).")
    gpu: int = Field(0, ge=0, description="GPUs of the type.")
    gpu_type: str | None = Field(None, description="GPU model (e.g. T4) when gpu > 0.")
    hourly: float = Field(gt=0, description="Pay-as-you-go price per hour in the table's currency: ECI bills an "
                          "InstanceType group at the ECS type's price, per second (hourly / 3600).")


def _eci_instance_types() -> dict[str, EciInstanceTypePrice]:
    # ecs.c5.large 0.622 CNY/h is the OriginPrice in the DescribeContainerGroupPrice docs example
    # (eci-pricing.md §3); the others are illustrative [unverified] China-site prices: set real ones in config.
    return {
        "ecs.c5.large": EciInstanceTypePrice(cpu=2, memory=4, hourly=0.622),
        "ecs.c6.large": EciInstanceTypePrice(cpu=2, memory=4, hourly=0.39),
        "ecs.c6.xlarge": EciInstanceTypePrice(cpu=4, memory=8, hourly=0.78),
        "ecs.g6.large": EciInstanceTypePrice(cpu=2, memory=8, hourly=0.5),
        "ecs.g6.xlarge": EciInstanceTypePrice(cpu=4, memory=16, hourly=1.0),
        "ecs.gn6i-c4g1.xlarge": EciInstanceTypePrice(cpu=4, memory=15, gpu=1, gpu_type="T4", hourly=8.85),
    }


class EciRegionPrices(_Section):
    """ECI's pay-as-you-go list prices in one region, in the table's currency (eci-pricing.md §1–2). Defaults: the
    China site (CNY) general category, as DescribeContainerGroupPrice's docs example quotes cn-hangzhou. The
    international site (USD) lists vcpu_second 0.0000077, gib_second 0.00000096, economy_vcpu_second 0.00000424."""

    vcpu_second: float = Field(0.000049, ge=0, description="Price per vCPU-second (0.1764 CNY/h).")
    gib_second: float = Field(0.00000613, ge=0, description="Price per GiB-second of memory (0.0221 CNY/h).")
    economy_vcpu_second: float = Field(0.000027, ge=0, description="Price per vCPU-second of the economy compute "
                                       "category (memory costs the same as general).")
    gpu_second: dict[str, float] = Field(default_factory=lambda: {"T4": 0.00217}, description="Price per "
                                         "GPU-second by GPU model, for costing GPU pods by share [unverified: ECI "
                                         "bills GPUs only inside a GPU ECS type's price; T4 is ecs.gn6i-c4g1.xlarge "
                                         "minus its vCPUs and memory at the rates above].")
    ephemeral_storage_gib_second: float = Field(0.00000057, ge=0, description="Price per GiB-second of temporary "
                                                "storage beyond the free amount (PL1 ESSD pay-as-you-go, "
                                                "≈ 1.5 CNY per GiB-month [unverified]).")
    free_ephemeral_storage_gib: float = Field(30.0, ge=0, description="Temporary storage included in every group "
                                              "(GiB).")
    spot_discount: float = Field(0.9, ge=0, lt=1, description="Share of an instance type's pay-as-you-go price "
                                 "that its spot market price saves (ECI: 30–90 %; the docs example quotes "
                                 "ecs.c5.large at 0.056 against 0.622).")
    instance_types: dict[str, EciInstanceTypePrice] = Field(default_factory=_eci_instance_types,
                                                            description="ECS types priced here, by name.")


class EciPriceTable(_Section):
    """List prices of ECI per region: what the emulator quotes (DescribeContainerGroupPrice) and what a cost report
    may estimate with. Prices are per second unless a field says hourly."""

    currency: Literal["CNY", "USD"] = Field("CNY", description="Currency of every price: it follows the account's "
                                            "site (aliyun.com CNY, alibabacloud.com USD), not the region.")
    default: EciRegionPrices = Field(default_factory=EciRegionPrices, description="Prices of regions not listed "
                                     "in `regions` (ECI publishes one vCPU/GiB rate per site).")
    regions: dict[str, EciRegionPrices] = Field(default_factory=dict, description="Prices by RegionId where they "
                                                "differ (ECS instance type prices vary by region).")

    def for_region(self, region_id: str) -> EciRegionPrices:
        return self.regions.get(region_id, self.default)


class EciEmulatorSettings(_Section):
    """`vnode eci-emulator`: a local server speaking ECI's API (2018-08-08) for the SDK, with no cloud account."""

    host: str = Field("127.0.0.1", description="Address to listen on. Flag --host.")
    port: int = Field(8780, ge=0, le=65535, description="Port to listen on (plain HTTP); 0 picks a free one. "
                      "Flag --port.")
    region_id: str = Field("cn-hangzhou", description="The region the emulator is (RegionId). Flag --region.")
    zone_id: str = Field("cn-hangzhou-h", description="Zone of groups created without ZoneId.")
    runtime: Literal["sim", "docker"] = Field("sim", description="sim: nothing runs, outcomes come from the "
                                              "container's env or command; docker: each group's containers run on "
                                              "the Docker engine of `docker`. Flag --runtime.")
    docker: DockerProviderSettings = Field(DockerProviderSettings(), description="The engine and options of the "
                                           "docker runtime (the Docker provider's settings).")
    docker_node_name: str = Field("eci-emulator", min_length=1, max_length=63,
                                  pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", description="The node name on the "
                                  "docker runtime's container labels (vnode.io/node): what it owns in the engine.")
    access_key_id: str = Field("vnode-emulator", min_length=1, description="The one AccessKey ID accepted. Flag "
                               "--access-key-id.")
    access_key_secret: SecretStr = Field(SecretStr("vnode-emulator-secret"), description="Its secret (requests "
                                         "are HMAC-SHA1 signed with it). Env VNODE_ECI_EMULATOR__ACCESS_KEY_SECRET "
                                         "or flag --access-key-secret.")
    scheduling_seconds: float = Field(1.0, ge=0, description="Seconds a new group stays Scheduling.")
    pending_seconds: float = Field(2.0, ge=0, description="Seconds a group then stays Pending (image pull).")
    restart_seconds: float = Field(2.0, ge=0, description="Seconds a restarted or updated group stays Restarting "
                                   "or Updating before its containers run again (sim runtime).")
    retention_seconds: float = Field(3600.0, ge=0, description="Seconds a finished group stays listed (ECI: 1 h).")
    max_clock_skew_seconds: float = Field(900.0, gt=0, description="A request whose Timestamp is further from "
                                          "now is refused (InvalidTimeStamp.Expired).")
    nonce_ttl_seconds: float = Field(900.0, ge=0, description="How long a SignatureNonce may not be reused.")
    throttles: dict[str, EciThrottleSettings] = Field(default_factory=_eci_throttles,
                                                      description="Per-action token buckets; an action not "
                                                      "listed is not throttled.")
    request_log_size: int = Field(10_000, ge=0, description="Requests kept in the emulator's request log.")
    exec_token_seconds: float = Field(30.0, gt=0, description="How long an ExecContainerCommand WebSocketUri may "
                                      "be dialled (once) after it was issued.")
    exec_idle_timeout_seconds: float = Field(60.0, gt=0, description="An exec WebSocket with no traffic (data or "
                                             "client pings) for this long is closed (ECI: about 60 s).")
    prices: EciPriceTable = Field(default_factory=EciPriceTable, description="What DescribeContainerGroupPrice "
                                  "quotes.")
    metric_cpu_share: float = Field(0.25, ge=0, le=1, description="sim runtime: share of a running container's "
                                    "vCPUs (its own, else an even split of the group's) its metrics show in use.")
    metric_memory_share: float = Field(0.5, gt=0, le=1, description="sim runtime: share of a running container's "
                                       "memory its metrics show as working set.")


class CostSettings(_Section):
    """The cost ledger (vnode/cost): what every pod the node runs was billed for, per build, job and namespace."""

    enabled: bool = Field(True, description="Record pods in the ledger, publish cost metrics and write the "
                          "vnode.io/cost annotation on finished pods.")
    db_path: Path = Field(Path(".vnode/cost/ledger.sqlite3"), description="The SQLite ledger file (WAL mode; "
                          "created with its directory). Left at this default, `vnode sandbox` keeps it in its state "
                          "directory (<state_dir>/cost/ledger.sqlite3). Flag --db of `vnode cost report`.")
    retention_days: float = Field(90.0, gt=0, description="Pods that ended longer ago than this are deleted from "
                                  "the ledger (days).")
    prune_interval_seconds: float = Field(3600.0, gt=0, description="Seconds between retention sweeps.")
    region_id: str | None = Field(None, description="Region whose prices cost ECI pods; default: the eci "
                                  "provider's region_id, else the zone's region.")
    prices: EciPriceTable = Field(default_factory=EciPriceTable, description="ECI list prices by region (the "
                                  "same table the ECI emulator quotes from).")
    notional_vcpu_second: float = Field(0.000049, ge=0, description="Docker and mock pods: price per vCPU-second "
                                        "(in prices.currency). Default: ECI's China-site list price, so a local run "
                                        "estimates what ECI would charge; such costs are labelled estimates.")
    notional_gib_second: float = Field(0.00000613, ge=0, description="Docker and mock pods: price per GiB-second "
                                       "of memory.")
    notional_gpu_second: float = Field(0.0, ge=0, description="Docker and mock pods: price per GPU-second.")
    default_container_cpu: float = Field(1.0, ge=0, description="vCPUs counted for a Docker or mock container that "
                                         "requests none (ECI's per-container default).")
    default_container_memory_gib: float = Field(2.0, ge=0, description="GiB counted for a Docker or mock "
                                                "container that requests no memory (ECI's per-container default).")
    job_keys: tuple[str, ...] = Field((), description="Pod label or annotation keys naming the job, tried in order "
                                      "before the Jenkins kubernetes-plugin's (e.g. tekton.dev/pipeline).")
    build_keys: tuple[str, ...] = Field((), description="Pod label or annotation keys naming the build or run, "
                                        "tried in order before Jenkins' (e.g. tekton.dev/pipelineRun).")
    url_keys: tuple[str, ...] = Field((), description="Pod label or annotation keys holding a link to the build.")


class VnodeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VNODE_", env_nested_delimiter="__", frozen=True,
                                      extra="forbid")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Flag --log-level.")
    pod_ip: str | None = Field(None, description="VNODE_POD_IP: this process's pod IP from the downward API; the "
                               "node's InternalIP unless node.internal_ip is set.")
    node: NodeSettings = NodeSettings()
    kube: KubeSettings = KubeSettings()
    kubelet: KubeletSettings = KubeletSettings()
    pods: PodSettings = PodSettings()
    provider: ProviderSettings = MockProviderSettings()
    sandbox: SandboxSettings = SandboxSettings()
    eci_emulator: EciEmulatorSettings = EciEmulatorSettings()
    cost: CostSettings = CostSettings()


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> VnodeSettings:
    """Build the settings from defaults, the YAML file, the environment and flag `overrides` (nested dicts)."""
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"--config: no such file: {config_file}")

    class _Sourced(VnodeSettings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
            return tuple(sources)

    try:
        loaded = _Sourced(**(overrides or {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc
    return VnodeSettings.model_validate(loaded.model_dump())
