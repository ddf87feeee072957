"""CreateContainerGroup's parameters read into a `ContainerGroup` draft, validated as ECI does (eci.md §1).

Owns the group-level fields (size, zone and vSwitches, spot, registry credentials, DNS, host aliases, deadlines,
tags), `Volume.N.*` and the limits (20 containers, 20 volumes, ConfigFile contents base64 and at most 32 KiB per
file). A group's size is its `Cpu`/`Memory` when given; else, for an `InstanceType` in `INSTANCE_TYPES`, that
type's; else the sum of its containers'; else ECI's default of 2 vCPU / 4 GiB. It must not touch the store.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime

from vnode.sandbox.eci import params as p
from vnode.sandbox.eci.container_params import container_spec
from vnode.sandbox.eci.errors import invalid, missing
from vnode.sandbox.eci.model import ConfigFile, ContainerGroup, DnsConfig, RegistryCredential, Spot, Volume

GROUP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,126}[a-z0-9])$")
RESTART_POLICIES = ("Always", "Never", "OnFailure")
SPOT_STRATEGIES = ("NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo")
VOLUME_TYPES = ("EmptyDirVolume", "NFSVolume", "ConfigFileVolume", "HostPathVolume", "DiskVolume", "FlexVolume")
MAX_CONTAINERS = MAX_VOLUMES = 20
MAX_VSWITCHES = 10
MAX_CONFIG_FILE_BYTES = 32 * 1024  # per file, decoded (S3: "≤32 KB")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# vCPU and GiB of the ECS types the emulator knows (Alibaba Cloud's ECS instance family tables); a type not listed
# is accepted and echoed, and the group is sized as if it were not given.
INSTANCE_TYPES: dict[str, tuple[float, float]] = {
    "ecs.t6-c1m2.large": (2, 4), "ecs.c5.large": (2, 4), "ecs.c6.large": (2, 4), "ecs.c6.xlarge": (4, 8),
    "ecs.c6.2xlarge": (8, 16), "ecs.c7.large": (2, 4), "ecs.c7.xlarge": (4, 8), "ecs.g5.large": (2, 8),
    "ecs.g6.large": (2, 8), "ecs.g6.xlarge": (4, 16), "ecs.g6.2xlarge": (8, 32), "ecs.g7.large": (2, 8),
    "ecs.g7.xlarge": (4, 16), "ecs.r6.large": (2, 16), "ecs.r6.xlarge": (4, 32),
    "ecs.gn6i-c4g1.xlarge": (4, 15), "ecs.gn6i-c8g1.2xlarge": (8, 31), "ecs.gn6v-c8g1.2xlarge": (8, 32),
}
_DEFAULT_SIZE = (2.0, 4.0)
# Group fields echoed as given in DescribeContainerGroups.
_ECHOED = ("SecurityGroupId", "RamRoleName", "ResourceGroupId", "EipInstanceId", "ImageSnapshotId")


def group_draft(params: p.Params, *, region_id: str, zone_id: str) -> ContainerGroup:
    """The group CreateContainerGroup asks for (id, seq, creation time and IP are the store's to assign)."""
    name = p.required(params, "ContainerGroupName")
    if not GROUP_NAME.match(name):
        raise invalid("ContainerGroupName", "2-128 lowercase letters, digits and hyphens, starting and ending with "
                      "a letter or digit")
    volumes = tuple(volume(v, f"Volume.{n}") for n, v in enumerate(p.indexed(params, "Volume"), start=1))
    if len(volumes) > MAX_VOLUMES:
        raise invalid("Volume", f"at most {MAX_VOLUMES} volumes")
    names = [v.name for v in volumes]
    if len(set(names)) != len(names):
        raise invalid("Volume", "volume names must be unique")
    containers = tuple(container_spec(c, f"Container.{n}", volumes=names)
                       for n, c in enumerate(p.indexed(params, "Container"), start=1))
    if not containers:
        raise missing("Container.1.Image")
    init = tuple(container_spec(c, f"InitContainer.{n}", volumes=names, init=True)
                 for n, c in enumerate(p.indexed(params, "InitContainer"), start=1))
    if len(containers) + len(init) > MAX_CONTAINERS:
        raise invalid("Container", f"at most {MAX_CONTAINERS} containers (init containers included)")
    every = [c.name for c in containers + init]
    if len(set(every)) != len(every):
        raise invalid("Container", "container names must be unique")
    restart_policy = params.get("RestartPolicy") or "Always"
    if restart_policy not in RESTART_POLICIES:
        raise invalid("RestartPolicy", f"one of {', '.join(RESTART_POLICIES)}")
    instance_type = p.present(params, "InstanceType") or ""
    cpu, memory = size(params, instance_type, sum(c.cpu for c in containers), sum(c.memory for c in containers))
    vswitches = [v.strip() for v in (p.present(params, "VSwitchId") or "").split(",") if v.strip()]
    if len(vswitches) > MAX_VSWITCHES:
        raise invalid("VSwitchId", f"at most {MAX_VSWITCHES} comma-separated vSwitch ids")
    extra = [(k, params[k]) for k in _ECHOED if p.present(params, k)]
    if vswitches:
        extra.append(("VSwitchId", vswitches[0]))  # the vSwitch ECI placed the group in
    if p.present(params, "EipInstanceId") or p.boolean(params, "AutoCreateEip"):
        extra.append(("InternetIp", "47.96.0.1"))  # an EIP is bound: the group has a public address
    p.boolean(params, "AutoMatchImageCache")  # validated; the emulator has no image cache to match
    return ContainerGroup(
        id="", name=name, seq=0, region_id=region_id, zone_id=p.present(params, "ZoneId") or zone_id, cpu=cpu,
        memory=memory, restart_policy=restart_policy, tags=tuple(p.tags(params)), containers=containers,
        init_containers=init, volumes=volumes, created=_EPOCH, intranet_ip="", extra=tuple(extra),
        instance_type=instance_type, spot=spot(params), registry_credentials=credentials(params),
        dns_policy=dns_policy(params), dns_config=dns_config(params), host_aliases=host_aliases(params),
        termination_grace_period_seconds=p.optional_int(params, "TerminationGracePeriodSeconds", low=0,
                                                        high=86400),
        active_deadline_seconds=p.optional_int(params, "ActiveDeadlineSeconds", low=1, high=2**31 - 1),
        ephemeral_storage=p.integer(params, "EphemeralStorage", 0, low=0, high=2048),
        sysctls=tuple((s.get("Name", ""), s.get("Value", "")) for s in p.indexed(params, "SecurityContext.Sysctl")))


def size(params: p.Params, instance_type: str, containers_cpu: float, containers_memory: float,
         ) -> tuple[float, float]:
    cpu, memory = p.number(params, "Cpu"), p.number(params, "Memory")
    if (cpu is not None and cpu <= 0) or (memory is not None and memory <= 0):
        raise invalid("Cpu" if cpu is not None and cpu <= 0 else "Memory", "must be positive")
    known = next((INSTANCE_TYPES[t.strip()] for t in instance_type.split(",") if t.strip() in INSTANCE_TYPES), None)
    if known is not None:
        return known
    return (cpu or containers_cpu or _DEFAULT_SIZE[0]), (memory or containers_memory or _DEFAULT_SIZE[1])


def volume(fields: p.Params, where: str) -> Volume:
    name, kind = p.present(fields, "Name"), p.present(fields, "Type")
    if not name:
        raise missing(f"{where}.Name")
    if not kind:
        raise missing(f"{where}.Type")
    if kind not in VOLUME_TYPES:
        raise invalid(f"{where}.Type", f"one of {', '.join(VOLUME_TYPES)}")
    if kind == "EmptyDirVolume":
        medium = p.present(fields, "EmptyDirVolume.Medium") or ""
        if medium not in ("", "Memory", "LocalRaid0"):
            raise invalid(f"{where}.EmptyDirVolume.Medium", "Memory or LocalRaid0 (or empty)")
        return Volume(name, kind, medium=medium, size_limit=p.present(fields, "EmptyDirVolume.SizeLimit") or "")
    if kind == "NFSVolume":
        for key in ("NFSVolume.Server", "NFSVolume.Path"):
            if not p.present(fields, key):
                raise missing(f"{where}.{key}")
        return Volume(name, kind, server=fields["NFSVolume.Server"], path=fields["NFSVolume.Path"],
                      read_only=p.boolean(fields, "NFSVolume.ReadOnly"))
    if kind == "ConfigFileVolume":
        # The SDK spells the default mode `DefaultModel`; the API reference `DefaultMode`.
        default = _mode(fields, "ConfigFileVolume.DefaultMode", where) or _mode(
            fields, "ConfigFileVolume.DefaultModel", where)
        files = tuple(_config_file(f, f"{where}.ConfigFileVolume.ConfigFileToPath.{n}")
                      for n, f in enumerate(p.indexed(fields, "ConfigFileVolume.ConfigFileToPath"), start=1))
        return Volume(name, kind, files=files, default_mode=default)
    if kind == "HostPathVolume":
        if not p.present(fields, "HostPathVolume.Path"):
            raise missing(f"{where}.HostPathVolume.Path")
        return Volume(name, kind, path=fields["HostPathVolume.Path"],
                      host_path_type=p.present(fields, "HostPathVolume.Type") or "")
    if kind == "DiskVolume":
        if not p.present(fields, "DiskVolume.DiskId"):
            raise missing(f"{where}.DiskVolume.DiskId")
        return Volume(name, kind, disk_id=fields["DiskVolume.DiskId"],
                      disk_size=p.integer(fields, "DiskVolume.DiskSize", 0, low=0, high=65536),
                      fs_type=p.present(fields, "DiskVolume.FsType") or "")
    return Volume(name, kind, flex_driver=p.present(fields, "FlexVolume.Driver") or "",
                  fs_type=p.present(fields, "FlexVolume.FsType") or "",
                  flex_options=p.present(fields, "FlexVolume.Options") or "")


def _config_file(fields: p.Params, where: str) -> ConfigFile:
    path = p.present(fields, "Path")
    if not path:
        raise missing(f"{where}.Path")
    if path.startswith("/") or ".." in path.split("/"):
        raise invalid(f"{where}.Path", "a relative path inside the volume")
    try:
        content = base64.b64decode(fields.get("Content", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(f"{where}.Content", "must be base64") from exc
    if len(content) > MAX_CONFIG_FILE_BYTES:
        raise invalid(f"{where}.Content", f"at most {MAX_CONFIG_FILE_BYTES // 1024} KiB per file")
    return ConfigFile(path, content, _mode(fields, "Mode", where))


def _mode(fields: p.Params, name: str, where: str) -> int | None:
    """A file mode: octal when written with a leading 0 (`0644`, the API reference's examples), else decimal as the
    Kubernetes API stores modes (420) [unverified which ECI expects; both are taken]."""
    text = p.present(fields, name)
    if text is None:
        return None
    try:
        mode = int(text, 8) if len(text) > 1 and text.startswith("0") else int(text)
    except ValueError as exc:
        raise invalid(f"{where}.{name}", f"{text!r} is not a file mode") from exc
    if not 0 <= mode <= 0o777:
        raise invalid(f"{where}.{name}", "a file mode between 0 and 0777")
    return mode


def spot(params: p.Params) -> Spot:
    strategy = p.present(params, "SpotStrategy") or "NoSpot"
    if strategy not in SPOT_STRATEGIES:
        raise invalid("SpotStrategy", f"one of {', '.join(SPOT_STRATEGIES)}")
    limit = p.number(params, "SpotPriceLimit")
    if strategy == "SpotWithPriceLimit" and limit is None:
        raise missing("SpotPriceLimit")
    if limit is not None and limit < 0:
        raise invalid("SpotPriceLimit", "must not be negative")
    return Spot(strategy, limit, p.optional_int(params, "SpotDuration", low=0, high=6))


def credentials(params: p.Params) -> tuple[RegistryCredential, ...]:
    found = []
    for n, entry in enumerate(p.indexed(params, "ImageRegistryCredential"), start=1):
        for key in ("Server", "UserName", "Password"):
            if not p.present(entry, key):
                raise missing(f"ImageRegistryCredential.{n}.{key}")
        found.append(RegistryCredential(entry["Server"], entry["UserName"], entry["Password"]))
    return tuple(found)


def dns_policy(params: p.Params) -> str:
    policy = params.get("DnsPolicy") or ""
    if policy not in ("", "None", "Default"):
        raise invalid("DnsPolicy", "None or Default")
    return policy


def dns_config(params: p.Params) -> DnsConfig | None:
    servers, searches = p.listed(params, "DnsConfig.NameServer"), p.listed(params, "DnsConfig.Search")
    options = [(o.get("Name", ""), o.get("Value", "")) for o in p.indexed(params, "DnsConfig.Option")]
    if not (servers or searches or options):
        return None
    if any(not name for name, _ in options):
        raise missing("DnsConfig.Option.N.Name")
    return DnsConfig(tuple(servers), tuple(searches), tuple(options))


def host_aliases(params: p.Params) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = []
    for n, alias in enumerate(p.indexed(params, "HostAliase"), start=1):
        ip = p.present(alias, "Ip")
        if not ip:
            raise missing(f"HostAliase.{n}.Ip")
        found.append((ip, tuple(p.listed(alias, "Hostname"))))
    return tuple(found)

