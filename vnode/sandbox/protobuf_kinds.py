"""The message layouts of the kinds whose protobuf bodies the sandbox decodes, and how each field maps to JSON.

Field numbers come from k8s.io/api's and k8s.io/apimachinery's generated.proto. This module is data only: the wire
reading lives in `protobuf.py`. A field missing from a layout is refused there rather than dropped, so describe a
field here before a client is expected to send it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# How a field's wire value becomes JSON. Go's generated marshallers write every non-pointer field, zero or not, so
# the "omit when zero" kinds drop zeros as `json:",omitempty"` does; pointer fields travel only when set and are kept.
FieldKind = Literal[
    "string",    # string, omitted when ""
    "int",       # non-pointer int32/int64, omitted when 0
    "optint",    # *int32/*int64, kept even when 0
    "flag",      # non-pointer bool, omitted when false
    "bool",      # *bool, kept even when false
    "strings",   # repeated string
    "bytes",     # []byte, base64 in JSON
    "time",      # metav1.Time {seconds, nanos} → RFC 3339 in whole seconds; an empty message is the zero time
    "map",       # map<string, string>
    "bytesmap",  # map<string, bytes> → base64 values
    "listmap",   # map<string, {repeated string items = 1}> → lists (CSR extra, ExtraValue)
    "intorstr",  # intstr.IntOrString {type, intVal, strVal} → a number or a string
    "message",   # a nested message
    "messages",  # a repeated nested message
    "ignore",    # read and dropped: state the server owns and rewrites on every write
]


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    message: Message | None = None


@dataclass(frozen=True)
class Message:
    name: str
    fields: Mapping[int, Field]


def _message(name: str, fields: Mapping[int, tuple[str, FieldKind] | tuple[str, FieldKind, Message]]) -> Message:
    return Message(name, {number: Field(*spec) for number, spec in fields.items()})


TYPE_META = _message("TypeMeta", {1: ("apiVersion", "string"), 2: ("kind", "string")})
OWNER_REFERENCE = _message("OwnerReference", {
    5: ("apiVersion", "string"), 1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
    6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")})
OBJECT_META = _message("ObjectMeta", {
    1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"), 4: ("selfLink", "string"),
    5: ("uid", "string"), 6: ("resourceVersion", "string"), 7: ("generation", "int"),
    8: ("creationTimestamp", "time"), 9: ("deletionTimestamp", "time"), 10: ("deletionGracePeriodSeconds", "optint"),
    11: ("labels", "map"), 12: ("annotations", "map"), 13: ("ownerReferences", "messages", OWNER_REFERENCE),
    14: ("finalizers", "strings"),
    # Server-side apply bookkeeping: the sandbox does not track field managers, so a client's copy has no effect.
    17: ("managedFields", "ignore")})
CONDITION = _message("Condition", {  # metav1.Condition
    1: ("type", "string"), 2: ("status", "string"), 3: ("observedGeneration", "int"),
    4: ("lastTransitionTime", "time"), 5: ("reason", "string"), 6: ("message", "string")})


def _object(kind: str, fields: Mapping[int, tuple[str, FieldKind] | tuple[str, FieldKind, Message]]) -> Message:
    return _message(kind, {1: ("metadata", "message", OBJECT_META), **fields})


CONFIG_MAP = _object("ConfigMap", {2: ("data", "map"), 3: ("binaryData", "bytesmap"), 4: ("immutable", "bool")})
SECRET = _object("Secret", {
    2: ("data", "bytesmap"), 3: ("type", "string"), 4: ("stringData", "map"), 5: ("immutable", "bool")})

_OBJECT_REFERENCE = _message("ObjectReference", {
    1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"), 4: ("uid", "string"),
    5: ("apiVersion", "string"), 6: ("resourceVersion", "string"), 7: ("fieldPath", "string")})
_LOCAL_OBJECT_REFERENCE = _message("LocalObjectReference", {1: ("name", "string")})
SERVICE_ACCOUNT = _object("ServiceAccount", {
    2: ("secrets", "messages", _OBJECT_REFERENCE), 3: ("imagePullSecrets", "messages", _LOCAL_OBJECT_REFERENCE),
    4: ("automountServiceAccountToken", "bool")})

_NAMESPACE_CONDITION = _message("NamespaceCondition", {
    1: ("type", "string"), 2: ("status", "string"), 4: ("lastTransitionTime", "time"), 5: ("reason", "string"),
    6: ("message", "string")})
NAMESPACE = _object("Namespace", {
    2: ("spec", "message", _message("NamespaceSpec", {1: ("finalizers", "strings")})),
    3: ("status", "message", _message("NamespaceStatus", {
        1: ("phase", "string"), 2: ("conditions", "messages", _NAMESPACE_CONDITION)}))})

_SERVICE_PORT = _message("ServicePort", {
    1: ("name", "string"), 2: ("protocol", "string"), 6: ("appProtocol", "string"), 3: ("port", "int"),
    4: ("targetPort", "intorstr"), 5: ("nodePort", "int")})
_SERVICE_SPEC = _message("ServiceSpec", {
    1: ("ports", "messages", _SERVICE_PORT), 2: ("selector", "map"), 3: ("clusterIP", "string"),
    18: ("clusterIPs", "strings"), 4: ("type", "string"), 5: ("externalIPs", "strings"),
    7: ("sessionAffinity", "string"), 8: ("loadBalancerIP", "string"), 9: ("loadBalancerSourceRanges", "strings"),
    10: ("externalName", "string"), 11: ("externalTrafficPolicy", "string"), 12: ("healthCheckNodePort", "int"),
    13: ("publishNotReadyAddresses", "flag"),
    14: ("sessionAffinityConfig", "message", _message("SessionAffinityConfig", {
        1: ("clientIP", "message", _message("ClientIPConfig", {1: ("timeoutSeconds", "optint")}))})),
    19: ("ipFamilies", "strings"), 17: ("ipFamilyPolicy", "string"), 20: ("allocateLoadBalancerNodePorts", "bool"),
    21: ("loadBalancerClass", "string"), 22: ("internalTrafficPolicy", "string"),
    23: ("trafficDistribution", "string")})
_LOAD_BALANCER_INGRESS = _message("LoadBalancerIngress", {
    1: ("ip", "string"), 2: ("hostname", "string"), 3: ("ipMode", "string")})
SERVICE = _object("Service", {
    2: ("spec", "message", _SERVICE_SPEC),
    3: ("status", "message", _message("ServiceStatus", {
        1: ("loadBalancer", "message", _message("LoadBalancerStatus", {
            1: ("ingress", "messages", _LOAD_BALANCER_INGRESS)})),
        2: ("conditions", "messages", CONDITION)}))})

_BOUND_OBJECT_REFERENCE = _message("BoundObjectReference", {
    1: ("kind", "string"), 2: ("apiVersion", "string"), 3: ("name", "string"), 4: ("uid", "string")})
TOKEN_REQUEST = _object("TokenRequest", {
    2: ("spec", "message", _message("TokenRequestSpec", {
        1: ("audiences", "strings"), 4: ("expirationSeconds", "optint"),
        3: ("boundObjectRef", "message", _BOUND_OBJECT_REFERENCE)})),
    3: ("status", "message", _message("TokenRequestStatus", {
        1: ("token", "string"), 2: ("expirationTimestamp", "time")}))})

_CSR_CONDITION = _message("CertificateSigningRequestCondition", {
    1: ("type", "string"), 6: ("status", "string"), 2: ("reason", "string"), 3: ("message", "string"),
    4: ("lastUpdateTime", "time"), 5: ("lastTransitionTime", "time")})
_CSR_SPEC = _message("CertificateSigningRequestSpec", {
    1: ("request", "bytes"), 7: ("signerName", "string"), 8: ("expirationSeconds", "optint"),
    5: ("usages", "strings"), 2: ("username", "string"), 3: ("uid", "string"), 4: ("groups", "strings"),
    6: ("extra", "listmap")})
CERTIFICATE_SIGNING_REQUEST = _object("CertificateSigningRequest", {
    2: ("spec", "message", _CSR_SPEC),
    3: ("status", "message", _message("CertificateSigningRequestStatus", {
        1: ("conditions", "messages", _CSR_CONDITION), 2: ("certificate", "bytes")}))})

# rbac.authorization.k8s.io/v1: `kubectl create role|clusterrole|rolebinding|clusterrolebinding`.
_LABEL_SELECTOR = _message("LabelSelector", {
    1: ("matchLabels", "map"), 2: ("matchExpressions", "messages", _message("LabelSelectorRequirement", {
        1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "strings")}))})
_POLICY_RULE = _message("PolicyRule", {
    1: ("verbs", "strings"), 2: ("apiGroups", "strings"), 3: ("resources", "strings"), 4: ("resourceNames", "strings"),
    5: ("nonResourceURLs", "strings")})
ROLE = _object("Role", {2: ("rules", "messages", _POLICY_RULE)})
CLUSTER_ROLE = _object("ClusterRole", {
    2: ("rules", "messages", _POLICY_RULE),
    3: ("aggregationRule", "message", _message("AggregationRule", {
        1: ("clusterRoleSelectors", "messages", _LABEL_SELECTOR)}))})
_BINDING_FIELDS: Mapping[int, tuple[str, FieldKind, Message]] = {
    2: ("subjects", "messages", _message("Subject", {
        1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")})),
    3: ("roleRef", "message", _message("RoleRef", {1: ("apiGroup", "string"), 2: ("kind", "string"),
                                                   3: ("name", "string")}))}
ROLE_BINDING = _object("RoleBinding", _BINDING_FIELDS)
CLUSTER_ROLE_BINDING = _object("ClusterRoleBinding", _BINDING_FIELDS)

# apps/v1 Deployment, as `kubectl create deployment NAME --image=... [--port] [--replicas] [-- COMMAND]` writes it:
# Go writes every non-pointer field, so the pod spec and container fields it never sets are described here too.
# Probes, env sources, volumes, security contexts and resource quantities are not described: refused (415).
_CONTAINER = _message("Container", {
    1: ("name", "string"), 2: ("image", "string"), 3: ("command", "strings"), 4: ("args", "strings"),
    5: ("workingDir", "string"),
    6: ("ports", "messages", _message("ContainerPort", {
        1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"), 4: ("protocol", "string"),
        5: ("hostIP", "string")})),
    7: ("env", "messages", _message("EnvVar", {1: ("name", "string"), 2: ("value", "string")})),
    # ResourceRequirements is a non-pointer struct: kubectl always sends it, empty.
    8: ("resources", "message", _message("ResourceRequirements", {})),
    13: ("terminationMessagePath", "string"), 14: ("imagePullPolicy", "string"), 16: ("stdin", "flag"),
    17: ("stdinOnce", "flag"), 18: ("tty", "flag"), 20: ("terminationMessagePolicy", "string")})
_POD_SPEC = _message("PodSpec", {
    2: ("containers", "messages", _CONTAINER), 20: ("initContainers", "messages", _CONTAINER),
    3: ("restartPolicy", "string"), 4: ("terminationGracePeriodSeconds", "optint"),
    5: ("activeDeadlineSeconds", "optint"), 6: ("dnsPolicy", "string"), 7: ("nodeSelector", "map"),
    8: ("serviceAccountName", "string"), 9: ("serviceAccount", "string"), 10: ("nodeName", "string"),
    11: ("hostNetwork", "flag"), 12: ("hostPID", "flag"), 13: ("hostIPC", "flag"), 16: ("hostname", "string"),
    17: ("subdomain", "string"), 19: ("schedulerName", "string"), 21: ("automountServiceAccountToken", "bool"),
    24: ("priorityClassName", "string"), 25: ("priority", "optint"), 27: ("shareProcessNamespace", "bool"),
    29: ("runtimeClassName", "string"), 30: ("enableServiceLinks", "bool"), 31: ("preemptionPolicy", "string"),
    35: ("setHostnameAsFQDN", "bool"), 37: ("hostUsers", "bool")})
_DEPLOYMENT_CONDITION = _message("DeploymentCondition", {
    1: ("type", "string"), 2: ("status", "string"), 6: ("lastUpdateTime", "time"), 7: ("lastTransitionTime", "time"),
    4: ("reason", "string"), 5: ("message", "string")})
DEPLOYMENT = _object("Deployment", {
    2: ("spec", "message", _message("DeploymentSpec", {
        1: ("replicas", "optint"), 2: ("selector", "message", _LABEL_SELECTOR),
        3: ("template", "message", _message("PodTemplateSpec", {
            1: ("metadata", "message", OBJECT_META), 2: ("spec", "message", _POD_SPEC)})),
        4: ("strategy", "message", _message("DeploymentStrategy", {
            1: ("type", "string"), 2: ("rollingUpdate", "message", _message("RollingUpdateDeployment", {
                1: ("maxUnavailable", "intorstr"), 2: ("maxSurge", "intorstr")}))})),
        5: ("minReadySeconds", "int"), 6: ("revisionHistoryLimit", "optint"), 7: ("paused", "flag"),
        9: ("progressDeadlineSeconds", "optint")})),
    3: ("status", "message", _message("DeploymentStatus", {
        1: ("observedGeneration", "int"), 2: ("replicas", "int"), 3: ("updatedReplicas", "int"),
        7: ("readyReplicas", "int"), 4: ("availableReplicas", "int"), 5: ("unavailableReplicas", "int"),
        9: ("terminatingReplicas", "optint"), 6: ("conditions", "messages", _DEPLOYMENT_CONDITION),
        8: ("collisionCount", "optint")}))})

# (apiVersion, kind) → layout: what kubectl's typed clients write as protobuf (1.32+) that the sandbox serves.
KINDS: Mapping[tuple[str, str], Message] = {
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Secret"): SECRET,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("v1", "Namespace"): NAMESPACE,
    ("v1", "Service"): SERVICE,
    ("authentication.k8s.io/v1", "TokenRequest"): TOKEN_REQUEST,
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): CERTIFICATE_SIGNING_REQUEST,
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): CLUSTER_ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ROLE_BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): CLUSTER_ROLE_BINDING,
    ("apps/v1", "Deployment"): DEPLOYMENT,
}
