"""A Kubernetes pod as an ECI CreateContainerGroup request, and the tags that find its group again.

`plan_create` maps a `ResolvedPod` onto nested CreateContainerGroup parameters (the form `EciClient.flatten` takes,
names as ECI spells them on the wire) plus the shapes and spot options to try; it raises `InvalidPod` naming the pod
field or annotation it cannot map. Containers are specs.py, volumes volumes.py, sizing sizing.py, annotations
annotations.py. Pure: no I/O, no clock, and nothing here may log or repr a Secret's value or a registry password.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vnode.config import EciProviderSettings
from vnode.errors import InvalidPod
from vnode.providers.base import PodRef, ResolvedPod
from vnode.providers.eci.annotations import USE_SPECS, SpotPlan, annotation_field, read_options
from vnode.providers.eci.sizing import GPU_RESOURCE, GroupShape, Need, container_need, group_need, round_up
from vnode.providers.eci.specs import container_params
from vnode.providers.eci.volumes import group_volumes
from vnode.providers.registry import auth_for_image, image_registry

__all__ = ["TAG_CLUSTER", "TAG_NAMESPACE", "TAG_NODE", "TAG_POD", "TAG_UID", "CreatePlan", "GroupShape", "SpotPlan",
           "group_name", "group_tags", "node_tags", "plan_create", "ref_from_tags"]

TAG_CLUSTER = "vnode.io/cluster"
TAG_NODE = "vnode.io/node"
TAG_NAMESPACE = "vnode.io/namespace"
TAG_POD = "vnode.io/pod"
TAG_UID = "vnode.io/pod-uid"
# Tag values are at most 128 characters (keys 64); pod and node names may have 253. The UID is the identity.
_TAG_VALUE_MAX = 128
# ContainerGroupName: 2-128 lowercase letters, digits and hyphens, starting and ending with a letter or digit.
_NAME_MAX, _HASH_LENGTH = 128, 10
_NOT_NAME = re.compile(r"[^a-z0-9]+")
MAX_CONTAINERS = 20  # per instance (ECI limits)
# ECI's DnsPolicy: "Default" is the VPC's resolver, "None" only DnsConfig. vnode does not know the cluster's DNS
# service, so ClusterFirst (and ClusterFirstWithHostNet) resolve through the VPC, as Kubernetes' Default does.
_DNS_POLICIES = {"ClusterFirst": "Default", "ClusterFirstWithHostNet": "Default", "Default": "Default",
                 "None": "None"}
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


@dataclass(frozen=True)
class CreatePlan:
    """Everything to create one pod's group: the fixed parameters, then one attempt per shape (and spot choice)."""

    name: str
    params: dict[str, Any] = field(repr=False)  # holds env values and registry passwords
    shapes: tuple[GroupShape, ...]
    spot: SpotPlan | None
    fail_on_create_error: bool

    def attempt_params(self, shape: GroupShape, *, spot: bool) -> dict[str, Any]:
        """The full CreateContainerGroup parameters of one attempt: `params`, the shape, and the spot fields
        (SpotStrategy NoSpot when `spot` is false or the pod asked for no spot instance)."""
        out = {**self.params, **shape.params()}
        if not (spot and self.spot):
            out["SpotStrategy"] = "NoSpot"
            return out
        out["SpotStrategy"] = self.spot.strategy
        if self.spot.price_limit is not None:
            out["SpotPriceLimit"] = self.spot.price_limit
        if self.spot.duration is not None:
            out["SpotDuration"] = self.spot.duration
        return out


def group_name(cluster: str, ref: PodRef) -> str:
    """`<namespace>-<name>` made valid and cut to fit, then a hash of cluster and UID, so neither another cluster
    nor a recreated pod (new UID) ever reuses a name."""
    digest = hashlib.sha256(f"{cluster}/{ref.uid}".encode()).hexdigest()[:_HASH_LENGTH]
    base = _NOT_NAME.sub("-", f"{ref.namespace}-{ref.name}".lower()).strip("-")
    base = base[:_NAME_MAX - _HASH_LENGTH - 1].rstrip("-")
    return f"{base}-{digest}" if base else digest


def _tag(value: str) -> str:
    return value[:_TAG_VALUE_MAX]


def node_tags(cluster: str, node_name: str) -> dict[str, str]:
    """The tags every group of this node carries: the filter that lists them."""
    return {TAG_CLUSTER: _tag(cluster), TAG_NODE: _tag(node_name)}


def group_tags(cluster: str, node_name: str, ref: PodRef) -> dict[str, str]:
    """Every value fits ECI's 128 characters; a longer pod name is cut (match groups by TAG_UID)."""
    return {**node_tags(cluster, node_name), TAG_NAMESPACE: _tag(ref.namespace), TAG_POD: _tag(ref.name),
            TAG_UID: _tag(ref.uid)}


def ref_from_tags(tags: Mapping[str, str]) -> PodRef | None:
    """The pod a group was created for, or None for a group without vnode's tags (the name may be cut)."""
    namespace, name, uid = tags.get(TAG_NAMESPACE), tags.get(TAG_POD), tags.get(TAG_UID)
    if namespace is None or not name or not uid:
        return None
    return PodRef(namespace, name, uid)


def plan_create(pod: ResolvedPod, settings: EciProviderSettings, *, node_name: str) -> CreatePlan:
    spec = pod.spec
    for key in _HOST_NAMESPACES:
        if spec.get(key):
            raise InvalidPod(f"ECI does not share the host's namespaces ({key})", field=f"spec.{key}")
    if not pod.containers:
        raise InvalidPod("a pod needs at least one container", field="spec.containers")
    if len(pod.containers) > MAX_CONTAINERS:
        raise InvalidPod(f"ECI runs at most {MAX_CONTAINERS} containers per pod", field="spec.containers")
    options = read_options(pod.pod.get("metadata", {}).get("annotations") or {}, settings)
    needs = [container_need(c, f"spec.containers[{i}]") for i, c in enumerate(pod.containers)]
    init_needs = [container_need(c, f"spec.initContainers[{i}]") for i, c in enumerate(pod.init_containers)]
    params: dict[str, Any] = {
        "ContainerGroupName": group_name(settings.cluster_name, pod.ref),
        "RestartPolicy": str(spec.get("restartPolicy") or "Always"),
        "Container": [container_params(pod, c, f"spec.containers[{i}]", needs[i], init=False)
                      for i, c in enumerate(pod.containers)],
        "InitContainer": [container_params(pod, c, f"spec.initContainers[{i}]", init_needs[i], init=True)
                          for i, c in enumerate(pod.init_containers)],
        "Volume": group_volumes(pod),
        "ImageRegistryCredential": _credentials(pod),
        "Tag": [{"Key": k, "Value": v} for k, v in group_tags(settings.cluster_name, node_name, pod.ref).items()],
        **_pod_level(pod),
        **options.params,
    }
    shapes = options.shapes or (round_up(group_need(needs, init_needs)),)
    _check_gpu(needs, init_needs, shapes, annotated=options.shapes is not None)
    return CreatePlan(name=params["ContainerGroupName"], params={k: v for k, v in params.items() if v != []},
                      shapes=shapes, spot=options.spot, fail_on_create_error=options.fail_on_create_error)


def _pod_level(pod: ResolvedPod) -> dict[str, Any]:
    spec = pod.spec
    out: dict[str, Any] = {}
    for key, wire in (("terminationGracePeriodSeconds", "TerminationGracePeriodSeconds"),
                      ("activeDeadlineSeconds", "ActiveDeadlineSeconds")):
        if spec.get(key) is not None:
            out[wire] = int(spec[key])
    policy = str(spec.get("dnsPolicy") or "ClusterFirst")
    if policy not in _DNS_POLICIES:
        raise InvalidPod(f"unknown dnsPolicy {policy!r}", field="spec.dnsPolicy")
    out["DnsPolicy"] = _DNS_POLICIES[policy]
    dns = spec.get("dnsConfig") or {}
    config = {"NameServer": list(dns.get("nameservers") or []), "Search": list(dns.get("searches") or []),
              "Option": [{"Name": o.get("name", ""), "Value": o.get("value")} for o in dns.get("options") or []]}
    if any(config.values()):
        out["DnsConfig"] = {k: v for k, v in config.items() if v}
    out["HostAliase"] = [{"Ip": alias.get("ip", ""), "Hostname": list(alias.get("hostnames") or [])}
                         for alias in spec.get("hostAliases") or []]
    # As the kubelet names a pod's host: spec.hostname, else the pod name cut to 63 characters.
    out["HostName"] = str(spec.get("hostname") or pod.ref.name[:63].rstrip("-."))
    if spec.get("shareProcessNamespace"):
        out["ShareProcessNamespace"] = "true"
    sysctls = [{"Name": s.get("name", ""), "Value": str(s.get("value", ""))}
               for s in (spec.get("securityContext") or {}).get("sysctls") or []]
    if sysctls:
        out["SecurityContext"] = {"Sysctl": sysctls}
    return out


def _credentials(pod: ResolvedPod) -> list[dict[str, str]]:
    """One ImageRegistryCredential per registry an image comes from, chosen as the kubelet's keyring does. Server
    is the registry host (Docker Hub as docker.io), how images name their registry."""
    out: dict[str, dict[str, str]] = {}
    for container in [*pod.init_containers, *pod.containers]:
        image = str(container.get("image") or "")
        server = image_registry(image)
        auth = auth_for_image(image, pod.registry_auth)
        if auth is not None and server not in out:
            out[server] = {"Server": server, "UserName": auth.username, "Password": auth.password}
    return list(out.values())


def _check_gpu(needs: list[Need], init_needs: list[Need], shapes: tuple[GroupShape, ...], *, annotated: bool) -> None:
    """GPUs come only with a GPU instance type, which only eci-use-specs can name."""
    for kind, group in (("containers", needs), ("initContainers", init_needs)):
        for index, need in enumerate(group):
            if not need.gpu:
                continue
            if not annotated:
                raise InvalidPod(f"ECI runs GPU containers only on a GPU instance type: name one in annotation "
                                 f"{USE_SPECS} (e.g. ecs.gn6i-c4g1.xlarge)",
                                 field=f"spec.{kind}[{index}].resources.limits[{GPU_RESOURCE}]")
            if any(shape.instance_type is None for shape in shapes):
                raise InvalidPod("a pod with GPUs needs instance types, not vCPU-memory specs",
                                 field=annotation_field(USE_SPECS))
