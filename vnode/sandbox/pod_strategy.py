"""Pod rules: the defaults and admission that kubelets and kubectl rely on, validation, and graceful deletion.

Defaulting follows kube-apiserver's SetDefaults_Pod plus the admission plugins every cluster runs
(ServiceAccount, DefaultTolerationSeconds, Priority). A pod bound to a node is deleted gracefully; an unbound or
finished pod goes at once.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable

from vnode.sandbox.strategy import Cause, Obj, Strategy, label_causes

DEFAULT_GRACE_SECONDS = 30
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# kube-apiserver's name suffix alphabet (no vowels, no ambiguous characters).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# Spec fields a pod update may change (validation.ValidatePodUpdate).
_MUTABLE_SPEC_FIELDS = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))


def _all_containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]


def image_pull_policy(image: str) -> str:
    # An untagged or :latest image defaults to Always, anything else to IfNotPresent.
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    if ":" not in name or name.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec, _Container, _ContainerPort and the volume sources: what pods and pod templates share."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in _all_containers(spec):
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("imagePullPolicy", image_pull_policy(container.get("image", "")))
        container.setdefault("resources", {})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
    for volume in spec.get("volumes", []):
        for source in ("secret", "configMap", "projected", "downwardAPI"):
            if source in volume:
                volume[source].setdefault("defaultMode", 0o644)


def container_causes(spec: Obj, path: str) -> list[Cause]:
    """Containers are required, each with a unique DNS-label name and an image (pods and pod templates alike)."""
    causes: list[Cause] = []
    if not spec.get("containers"):
        causes.append((f"{path}.containers", "FieldValueRequired", "Required value"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group, [])):
            where = f"{path}.{group}[{index}]"
            name = container.get("name", "")
            if not name:
                causes.append((f"{where}.name", "FieldValueRequired", "Required value"))
            else:
                causes += label_causes(f"{where}.name", name)
                if name in seen:
                    causes.append((f"{where}.name", "FieldValueDuplicate", f'Duplicate value: "{name}"'))
                seen.add(name)
            if not container.get("image"):
                causes.append((f"{where}.image", "FieldValueRequired", "Required value"))
    return causes


def qos_class(spec: Obj) -> str:
    requests_seen = limits_seen = False
    guaranteed = True
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        requests_seen |= any(k in ("cpu", "memory") for k in requests)
        limits_seen |= any(k in ("cpu", "memory") for k in limits)
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if not requests_seen and not limits_seen:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    keep_status_on_create = False

    def __init__(self, service_account_exists: Callable[[str, str], bool]) -> None:
        self._service_account_exists = service_account_exists

    def prepare_for_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        # SetDefaults_Pod (pods only, not pod templates): service links, and requests defaulted from limits.
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        for container in _all_containers(spec):
            resources = container["resources"]
            if resources.get("limits"):
                requests = resources.setdefault("requests", {})
                for name, value in resources["limits"].items():
                    requests.setdefault(name, value)
        self._admit_service_account(obj)
        self._add_default_tolerations(spec)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}

    def _admit_service_account(self, obj: Obj) -> None:
        """The ServiceAccount admission plugin: default the account and mount its token as a projected volume."""
        spec = obj["spec"]
        account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = spec["serviceAccount"] = account
        if spec.get("automountServiceAccountToken") is False:
            return
        volume_name = f"kube-api-access-{random_suffix()}"
        spec.setdefault("volumes", []).append({
            "name": volume_name,
            "projected": {
                "defaultMode": 0o644,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [
                        {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}},
                    ]}},
                ],
            },
        })
        for container in _all_containers(spec):
            mounts = container.setdefault("volumeMounts", [])
            if not any(m.get("mountPath") == SERVICE_ACCOUNT_MOUNT for m in mounts):
                mounts.append({"name": volume_name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT})

    @staticmethod
    def _add_default_tolerations(spec: Obj) -> None:
        """DefaultTolerationSeconds admission: tolerate not-ready/unreachable nodes for 300 s."""
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists")
                       for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 300})

    def validate(self, obj: Obj) -> list[Cause]:
        causes = super().validate(obj)
        spec = obj.get("spec") or {}
        causes += container_causes(spec, "spec")
        account = spec.get("serviceAccountName", "default")
        if not self._service_account_exists(obj["metadata"].get("namespace", ""), account):
            causes.append(("spec.serviceAccountName", "FieldValueNotFound",
                           f'Not found: serviceaccount "{account}" not found'))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        """Only container images and a few scheduling fields may change after creation."""
        def masked(spec: Obj) -> Obj:
            out = copy.deepcopy(spec)
            for field in _MUTABLE_SPEC_FIELDS:
                out.pop(field, None)
            for container in _all_containers(out):
                container.pop("image", None)
            return out

        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        if masked(new_spec) != masked(old_spec):
            return [("spec", "FieldValueForbidden",
                     "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                     "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                     "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                     "(allow it to be set to 1 if it was previously negative)")]
        return []

    def grace_period_seconds(self, obj: Obj, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        # An unscheduled pod, or one that has finished, has no kubelet to wait for.
        if not spec.get("nodeName") or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = requested if requested is not None else spec.get("terminationGracePeriodSeconds")
        if grace is None:
            grace = DEFAULT_GRACE_SECONDS
        return max(int(grace), 0)

