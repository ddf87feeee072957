"""Where kube-apiserver sends a pod's log, exec, attach and port-forward, and a node proxy request, on the kubelet.

Pure functions over the Pod and Node objects (upstream pkg/registry/core/pod/strategy.go and node/strategy.go):
container defaulting, query translation (`stdin` → `input=1`, ...), node address and port choice. No I/O.
"""


import ipaddress
import json
import logging
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

log = logging.getLogger(__name__)

# Our default for kube-apiserver's --kubelet-preferred-address-types (upstream's default begins with
# Hostname, which does not resolve for sandbox nodes).
DEFAULT_ADDRESS_TYPES: tuple[str, ...] = ("InternalIP", "Hostname", "ExternalIP")
DEFAULT_KUBELET_PORT = 10250  # --kubelet-port, used when daemonEndpoints.kubeletEndpoint.Port is 0

Query = Sequence[tuple[str, str]]
_INT = re.compile(r"^[+-]?[0-9]+$")
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class ProxyError(Exception):
    """A failure kube-apiserver reports as a metav1.Status with this code, reason and message."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        body["message"] = self.message
        if self.reason:  # metav1.Status fields are omitempty
            body["reason"] = self.reason
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def body(self) -> bytes:
        return json.dumps(self.status()).encode()


class NoLogYet(ProxyError):
    """Raised for the log of a pod without a node; not a failure: kube-apiserver answers 204 No Content
    (LogLocation returns no URL and StreamObject writes 204 for a nil stream). aiohttp drops any body."""

    def __init__(self, pod_name: str) -> None:
        super().__init__(204, "", f"pod {pod_name} is not bound to a node yet")


def _bad_request(message: str) -> ProxyError:
    return ProxyError(400, "BadRequest", message)


@dataclass(frozen=True, slots=True)
class KubeletLocation:
    host: str
    port: int
    path: str  # unescaped; "" only for a node proxy request without a sub-path
    query: tuple[tuple[str, str], ...] = ()

    @property
    def netloc(self) -> str:
        # net.JoinHostPort: IPv6 literals are bracketed.
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def target(self) -> str:
        """The request-target: escaped path plus the query encoded like Go's url.Values.Encode."""
        path = quote(self.path or "/", safe="/$&+,:;=@-_.~")
        return path + ("?" + urlencode(self.query) if self.query else "")

    @property
    def url(self) -> str:
        return f"https://{self.netloc}{self.target}"


def kubelet_address(
    node: Mapping[str, Any], preferred_address_types: Sequence[str] = DEFAULT_ADDRESS_TYPES
) -> tuple[str, int]:
    """(host, port) kube-apiserver dials for this node (kubelet_client.go GetConnectionInfo)."""
    status = node.get("status") or {}
    addresses = status.get("addresses") or []
    for address_type in preferred_address_types:  # nodeutil.GetPreferredNodeAddress: type order wins
        for address in addresses:
            if address.get("type") == address_type and address.get("address"):
                port = int(
                    ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0
                )
                return str(address["address"]), port if port > 0 else DEFAULT_KUBELET_PORT
    known = " ".join(f"{{{a.get('type', '')} {a.get('address', '')}}}" for a in addresses)
    # A plain Go error, so the apiserver answers 500 with no reason.
    raise ProxyError(500, "", f"no preferred addresses found; known addresses: [{known}]")


def _values(query: Query, key: str) -> list[str]:
    return [value for name, value in query if name == key]


def _flag(query: Query, key: str) -> bool:
    # runtime.Convert_Slice_string_To_bool: only absence, "0" and "false" (any case) are false.
    values = _values(query, key)
    return bool(values) and values[0] != "0" and values[0].lower() != "false"


def _int64(query: Query, key: str) -> int | None:
    values = _values(query, key)
    if not values:
        return None
    if not _INT.match(values[0]):
        raise _bad_request(f'strconv.ParseInt: parsing "{values[0]}": invalid syntax')
    number = int(values[0])
    if not -(2**63) <= number < 2**63:
        raise _bad_request(f'strconv.ParseInt: parsing "{values[0]}": value out of range')
    return number


def _since_time(query: Query) -> str | None:
    """metav1.Time.UnmarshalQueryParameter, re-formatted like time.RFC3339 in UTC (seconds precision)."""
    values = _values(query, "sinceTime")
    if not values:
        return None
    text = values[0]
    if text in ("", "null"):  # the zero time, as upstream decodes it
        return "0001-01-01T00:00:00Z"
    match = _RFC3339.match(text)
    if match is None:
        raise _bad_request(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse')
    try:
        moment = datetime.fromisoformat(match.group(1) + match.group(3).replace("Z", "+00:00"))
    except ValueError as exc:
        raise _bad_request(f'parsing time "{text}": {exc}') from exc
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _log_params(query: Query, pod_name: str) -> list[tuple[str, str]]:
    """PodLogOptions decoding (400) and ValidatePodLogOptions (422), then LogLocation's params."""
    since_seconds, tail, limit = (
        _int64(query, "sinceSeconds"),
        _int64(query, "tailLines"),
        _int64(query, "limitBytes"),
    )
    since_time = _since_time(query)
    causes: list[tuple[str, str, str]] = []  # (field, reason, body)
    if tail is not None and tail < 0:
        causes.append(
            ("tailLines", "FieldValueInvalid", f"Invalid value: {tail}: must be greater than or equal to 0")
        )
    if limit is not None and limit < 1:
        causes.append(("limitBytes", "FieldValueInvalid", f"Invalid value: {limit}: must be greater than 0"))
    if since_seconds is not None and since_time is not None:
        causes.append(
            (
                "",
                "FieldValueForbidden",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
            )
        )
    elif since_seconds is not None and since_seconds < 1:
        causes.append(
            ("sinceSeconds", "FieldValueInvalid", f"Invalid value: {since_seconds}: must be greater than 0")
        )
    if causes:
        errors = [f"{field}: {body}" for field, _, body in causes]
        joined = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        details = {
            "name": pod_name,
            "kind": "PodLogOptions",
            "causes": [{"reason": r, "message": b, "field": f} for f, r, b in causes],
        }
        raise ProxyError(422, "Invalid", f'PodLogOptions "{pod_name}" is invalid: {joined}', details)
    params = [(name, "true") for name in ("follow", "previous", "timestamps") if _flag(query, name)]
    for name, number in (("sinceSeconds", since_seconds), ("tailLines", tail), ("limitBytes", limit)):
        if number is not None:
            params.append((name, str(number)))
    if since_time is not None:
        params.append(("sinceTime", since_time))
    return params


def _stream_params(query: Query, subresource: str) -> list[tuple[str, str]]:
    """strategy.go streamParams: the kubelet's internal names with "1" (pkg/apis/core ExecStdinParam...)."""
    if subresource == "portforward":
        ports: list[str] = []
        for value in _values(query, "ports"):
            for part in value.split(","):  # Convert_Slice_string_To_Slice_int32: repeated or comma-separated
                if not part.isdigit() or int(part) > 0xFFFF:
                    problem = "value out of range" if part.isdigit() else "invalid syntax"
                    raise _bad_request(
                        f'cannot convert to []int32: strconv.ParseUint: parsing "{part}": {problem}'
                    )
                ports.append(str(int(part)))
        return [("port", ",".join(ports))] if ports else []
    params = [(wire, "1") for api, wire in _STREAM_FLAGS if _flag(query, api)]
    if subresource == "exec":
        params += [("command", command) for command in _values(query, "command")]
    return params


_STREAM_FLAGS = (("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty"))


def _choose_container(pod: Mapping[str, Any], requested: str) -> str:
    """strategy.go validateContainer (1.33: every container, init first, in the "choose one of" list)."""
    spec = pod.get("spec") or {}
    name = (pod.get("metadata") or {}).get("name", "")
    containers = spec.get("containers") or []
    every = [
        c.get("name", "")
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
    ]
    if not requested:
        if len(containers) == 1:
            return str(containers[0].get("name", ""))
        if not containers:
            raise _bad_request(f"a container name must be specified for pod {name}")
        raise _bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(every)}]"
        )
    if requested not in every:
        raise _bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def pod_location(
    pod: Mapping[str, Any],
    node: Mapping[str, Any] | None,
    subresource: str,
    query: Query,
    *,
    preferred_address_types: Sequence[str] = DEFAULT_ADDRESS_TYPES,
) -> KubeletLocation:
    """The kubelet URL for pods/{name}/{log,exec,attach,portforward}, checked in upstream's order.

    `node` is the object named by spec.nodeName (None if the pod has none or it does not exist). Raises
    ProxyError with kube-apiserver's status, or NoLogYet (204) for the log of an unscheduled pod.
    """
    if subresource not in ("log", "exec", "attach", "portforward"):
        raise ValueError(f"not a kubelet subresource: {subresource}")
    meta = pod.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    params = _log_params(query, name) if subresource == "log" else _stream_params(query, subresource)
    container = ""
    if subresource != "portforward":
        container = _choose_container(pod, (_values(query, "container") or [""])[0])
    node_name = (pod.get("spec") or {}).get("nodeName") or ""
    if not node_name:
        if subresource == "log":
            raise NoLogYet(name)
        raise _bad_request(f"pod {name} does not have a host assigned")
    if node is None:
        raise ProxyError(
            404, "NotFound", f'nodes "{node_name}" not found', {"name": node_name, "kind": "nodes"}
        )
    host, port = kubelet_address(node, preferred_address_types)
    if subresource == "log":
        path = f"/containerLogs/{namespace}/{name}/{container}"
    elif subresource == "portforward":
        path = f"/portForward/{namespace}/{name}"
    else:
        path = f"/{subresource}/{namespace}/{name}/{container}"
    # url.Values.Encode sorts by key and keeps each key's values in order.
    return KubeletLocation(host, port, path, tuple(sorted(params, key=lambda pair: pair[0])))


def node_proxy_location(
    node: Mapping[str, Any],
    path: str,
    query: Query,
    *,
    preferred_address_types: Sequence[str] = DEFAULT_ADDRESS_TYPES,
    require_global_unicast: bool = False,
) -> KubeletLocation:
    """The kubelet URL for /api/v1/nodes/{name}/proxy{path}; `path` is what follows "/proxy" ("" allowed).

    Like net.JoinPreservingTrailingSlash the path is cleaned and keeps a trailing slash. An empty path stays
    empty: `KubeletProxy.proxy_http` answers GET/HEAD with upstream's 301 to ".../proxy/". The query passes
    through unchanged (upgradeaware.go copies RawQuery). `require_global_unicast` applies upstream's
    isProxyableHostname rule to IP addresses (it refuses loopback, so the sandbox leaves it off).
    """
    host, port = kubelet_address(node, preferred_address_types)
    if require_global_unicast:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and (
            ip.is_unspecified
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or str(ip) == "255.255.255.255"
        ):
            raise _bad_request("address not allowed")
    cleaned = ""
    if path:
        cleaned = posixpath.normpath("/" + path.lstrip("/"))
        if path.endswith("/") and not cleaned.endswith("/"):
            cleaned += "/"
    return KubeletLocation(host, port, cleaned, tuple(query))
