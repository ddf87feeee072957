"""Discovery documents: `/version`, `/api`, `/apis`, and the resource list of each group version.

Plain (unaggregated) discovery: kubectl asks for the aggregated v2 form first and falls back to these, as it does
against any server that does not offer it. Derived entirely from the resource table.
"""

from __future__ import annotations

from typing import Any

from vnode import KUBERNETES_VERSION, __version__
from vnode.sandbox.resources import ResourceRegistry, ResourceType

Obj = dict[str, Any]

# Verbs of each subresource, as kube-apiserver lists them.
SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "binding": ["create"],
    "log": ["get"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
    "proxy": ["create", "delete", "get", "patch", "update"],
    "approval": ["get", "patch", "update"],
    "finalize": ["update"],
    "token": ["create"],
    "scale": ["get", "patch", "update"],
}
SUBRESOURCE_KINDS = {"binding": "Binding", "token": "TokenRequest", "exec": "PodExecOptions",
                     "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions",
                     "log": "Pod", "proxy": "NodeProxyOptions", "scale": "Scale"}
# Subresources served in another group's type: kubectl's scale client reads the Scale kind's group from here.
SUBRESOURCE_GROUP_VERSIONS = {"scale": ("autoscaling", "v1")}


def version_info() -> Obj:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{KUBERNETES_VERSION}",
        "gitCommit": f"vnode-sandbox-{__version__}",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> Obj:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def group_list(resources: ResourceRegistry) -> Obj:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [group(resources, name) for name in resources.group_versions() if name]}


def group(resources: ResourceRegistry, name: str) -> Obj:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in resources.group_versions()[name]]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": versions,
            "preferredVersion": versions[0]}


def _resource_entries(rtype: ResourceType) -> list[Obj]:
    entry: Obj = {"name": rtype.resource, "singularName": rtype.singular_name, "namespaced": rtype.namespaced,
                  "kind": rtype.kind, "verbs": list(rtype.verbs)}
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    entries = [entry]
    for sub in rtype.subresources:
        sub_entry: Obj = {"name": f"{rtype.resource}/{sub}", "singularName": "", "namespaced": rtype.namespaced,
                          "kind": SUBRESOURCE_KINDS.get(sub, rtype.kind), "verbs": SUBRESOURCE_VERBS[sub]}
        if sub in SUBRESOURCE_GROUP_VERSIONS:
            sub_entry["group"], sub_entry["version"] = SUBRESOURCE_GROUP_VERSIONS[sub]
        entries.append(sub_entry)
    return entries


def resource_list(resources: ResourceRegistry, group_name: str, version: str) -> Obj | None:
    types = resources.in_group_version(group_name, version)
    if not types:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group_name}/{version}" if group_name else version,
            "resources": [e for t in types for e in _resource_entries(t)]}
