"""Per-kind rules applied around generic create, update and delete: defaulting, validation, grace periods.

The base `Strategy` is what kube-apiserver does for a plain object; subclasses encode what differs per kind
(pods in `pod_strategy.py`). Strategies mutate only the copy they are handed and never touch the store.
"""

from __future__ import annotations

import base64
import re
from typing import Any

Obj = dict[str, Any]
Cause = tuple[str, str, str]  # (field path, cause reason, message)

# metadata.name rules: most kinds are DNS-1123 subdomains; namespaces are DNS-1123 labels.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def subdomain_causes(field: str, value: str) -> list[Cause]:
    if len(value) > 253 or not DNS1123_SUBDOMAIN.match(value):
        return [(field, "FieldValueInvalid",
                 f'Invalid value: "{value}": a lowercase RFC 1123 subdomain must consist of lower case '
                 "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character")]
    return []


def label_causes(field: str, value: str) -> list[Cause]:
    if len(value) > 63 or not DNS1123_LABEL.match(value):
        return [(field, "FieldValueInvalid",
                 f'Invalid value: "{value}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
                 "characters or '-', and must start and end with an alphanumeric character")]
    return []


class Strategy:
    # Whether a PUT of a missing object creates it (leases and events allow it in kube-apiserver).
    allow_create_on_update = False
    # Whether create keeps a client-supplied .status (nodes do; pods and CSRs have status reset).
    keep_status_on_create = True
    names_are_labels = False

    def prepare_for_create(self, obj: Obj) -> None:
        """Default fields of a new object."""

    def validate(self, obj: Obj) -> list[Cause]:
        name = obj["metadata"].get("name", "")
        if self.names_are_labels:
            return label_causes("metadata.name", name)
        return subdomain_causes("metadata.name", name)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Adjust an update before validation (e.g. keep immutable fields)."""

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []

    def grace_period_seconds(self, obj: Obj, requested: int | None) -> int:
        """How long a delete waits before the object is removed; 0 removes it at once."""
        return 0


class NamespaceStrategy(Strategy):
    names_are_labels = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"phase": "Active"}
        # The namespace lifecycle keeps the `kubernetes` finalizer until the namespace's content is gone.
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]


# NodeSystemInfo's fields are plain strings in Go, so kube-apiserver always serializes all of them ("" when unset);
# typed clients (kubernetes_asyncio) reject a nodeInfo that lacks one.
_NODE_INFO_FIELDS = ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                     "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture")


class NodeStrategy(Strategy):
    def prepare_for_create(self, obj: Obj) -> None:
        self._normalize(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._normalize(new)

    @staticmethod
    def _normalize(node: Obj) -> None:
        node_status = node.setdefault("status", {})
        info = node_status.setdefault("nodeInfo", {})
        for field in _NODE_INFO_FIELDS:
            info.setdefault(field, "")
        endpoints = node_status.setdefault("daemonEndpoints", {}).setdefault("kubeletEndpoint", {})
        endpoints.setdefault("Port", 0)


class SecretStrategy(Strategy):
    """`stringData` is write-only: kube-apiserver merges it into `data` (base64), its keys winning, and drops it.
    A Secret without a type is defaulted to Opaque (SetDefaults_Secret)."""

    def prepare_for_create(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        self._merge_string_data(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        self._merge_string_data(new)

    @staticmethod
    def _merge_string_data(secret: Obj) -> None:
        string_data = secret.pop("stringData", None)
        if not isinstance(string_data, dict) or not string_data:
            return
        data = dict(secret.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data


class CertificateSigningRequestStrategy(Strategy):
    keep_status_on_create = False

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        spec = obj.get("spec") or {}
        if not spec.get("request"):
            causes.append(("spec.request", "FieldValueRequired", "Required value"))
        if not spec.get("signerName"):
            causes.append(("spec.signerName", "FieldValueRequired", "Required value"))
        if not spec.get("usages"):
            causes.append(("spec.usages", "FieldValueRequired", "Required value"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        if new.get("spec") != old.get("spec"):
            return [("spec", "FieldValueForbidden", "Forbidden: field is immutable")]
        return []


class LenientCreateOnUpdate(Strategy):
    allow_create_on_update = True


class EventStrategy(LenientCreateOnUpdate):
    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        involved = obj.get("involvedObject") or {}
        ns = obj["metadata"].get("namespace", "")
        # Events must sit in the namespace of the object they are about (cluster-scoped objects: "default").
        if involved.get("namespace") and involved["namespace"] != ns:
            causes.append(("involvedObject.namespace", "FieldValueInvalid",
                           "Invalid value: does not match event.namespace"))
        return causes
