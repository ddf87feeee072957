"""Container environments, built the way the kubelet's makeEnvironmentVariables builds them.

Owns the `ObjectSource` seam and the per-pod ConfigMap/Secret lookups (with their Optional/Mandatory events) that
volumes share, the downward API values, `$(VAR)` expansion and env/envFrom resolution. Must do no I/O except through
`ObjectSource`, and must never log a value or put one in a message: Secret contents pass through here.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, Protocol

from vnode.errors import InvalidPod, NotSupported, Retryable
from vnode.providers.base import EnvVar, PodRef, ProviderEvent
from vnode.util.quantity import parse_quantity

Kind = Literal["configmap", "secret"]
_TITLE: dict[Kind, str] = {"configmap": "ConfigMap", "secret": "Secret"}
# The kubelet resolves init containers, then app containers, then ephemeral containers.
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# k8s.io/apimachinery IsEnvVarName (the rule virtual-kubelet applies to envFrom keys).
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class ObjectSource(Protocol):
    """Where ConfigMaps, Secrets and service-account tokens come from (an informer cache, the API server)."""

    async def get_configmap(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The ConfigMap as the API returns it; None when it does not exist."""
        ...

    async def get_secret(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The Secret as the API returns it (values base64 in `data`); None when it does not exist."""
        ...

    async def service_account_token(self, namespace: str, service_account: str, *, audience: str | None,
                                    expiration_seconds: int, pod: PodRef) -> str:
        """A token from the TokenRequest API, bound to `pod`."""
        ...


class MissingReference(Retryable):
    """A mandatory ConfigMap, Secret or key does not exist (yet): record `event` and retry the pod later.

    `events` is every Warning gathered for the pod up to and including `event`.
    """

    def __init__(self, event: ProviderEvent, events: tuple[ProviderEvent, ...]) -> None:
        super().__init__(event.message)
        self.event = event
        self.events = events


@dataclass(frozen=True)
class PodContext:
    """The pod being resolved, with what the node knows that the stored pod may not say yet."""

    pod: Mapping[str, Any]
    node_name: str
    host_ip: str
    pod_ip: str
    allocatable: Mapping[str, str]

    @property
    def meta(self) -> Mapping[str, Any]:
        meta: Mapping[str, Any] = self.pod.get("metadata") or {}
        return meta

    @property
    def spec(self) -> Mapping[str, Any]:
        spec: Mapping[str, Any] = self.pod.get("spec") or {}
        return spec


@dataclass(frozen=True)
class _Object:
    env: Mapping[str, str]  # what env and envFrom see: ConfigMap `data`; Secret `data`, decoded
    files: Mapping[str, bytes]  # what volumes see: ConfigMap `data` then `binaryData`; Secret `data`


class References:
    """One pod's ConfigMap and Secret lookups: each object is fetched once, Warning events gathered in order."""

    def __init__(self, source: ObjectSource, namespace: str) -> None:
        self.source = source
        self.namespace = namespace
        self.events: list[ProviderEvent] = []
        self._cache: dict[tuple[Kind, str], _Object | None] = {}

    def warn(self, reason: str, message: str) -> None:
        event = ProviderEvent("Warning", reason, message)
        if event not in self.events:
            self.events.append(event)

    def missing(self, reason: str, message: str) -> MissingReference:
        event = ProviderEvent("Warning", reason, message)
        return MissingReference(event, (*[e for e in self.events if e != event], event))

    async def require(self, kind: Kind, name: str, *, optional: bool, skipping: str) -> _Object | None:
        """The object; None (after an Optional…NotFound warning) if it is optional and absent."""
        if (kind, name) not in self._cache:
            if kind == "configmap":
                raw = await self.source.get_configmap(self.namespace, name)
                self._cache[kind, name] = None if raw is None else _configmap(raw, name)
            else:
                raw = await self.source.get_secret(self.namespace, name)
                self._cache[kind, name] = None if raw is None else _secret(raw, name)
        found = self._cache[kind, name]
        if found is None:
            what = f'{kind} "{name}" not found'
            if not optional:
                raise self.missing(f"Mandatory{_TITLE[kind]}NotFound", what)
            self.warn(f"Optional{_TITLE[kind]}NotFound", skipping + what)
        return found

    def key_missing(self, kind: Kind, name: str, key: str, *, optional: bool, skipping: str) -> None:
        """Warn of an optional key that is absent; raise MissingReference for a mandatory one."""
        what = f'key "{key}" does not exist in {kind} "{name}"'
        if not optional:
            raise self.missing(f"Mandatory{_TITLE[kind]}KeyNotFound", what)
        self.warn(f"Optional{_TITLE[kind]}KeyNotFound", skipping + what)


def _configmap(raw: Mapping[str, Any], name: str) -> _Object:
    data: dict[str, str] = dict(raw.get("data") or {})
    files = {key: value.encode() for key, value in data.items()}
    # The API forbids a key in both `data` and `binaryData`.
    files.update(_decoded(raw.get("binaryData") or {}, f'configmap "{name}"'))
    return _Object(env=data, files=files)


def _secret(raw: Mapping[str, Any], name: str) -> _Object:
    # Stored Secrets hold only `data`: the API server merges `stringData` into it on write.
    files = _decoded(raw.get("data") or {}, f'secret "{name}"')
    # Go's string([]byte) keeps bytes that are not UTF-8; surrogateescape keeps them recoverable.
    return _Object(env={k: v.decode("utf-8", "surrogateescape") for k, v in files.items()}, files=files)


def _decoded(values: Mapping[str, str], what: str) -> dict[str, bytes]:
    # []byte fields travel base64-encoded in JSON.
    try:
        return {key: base64.b64decode(value, validate=True) for key, value in values.items()}
    except (binascii.Error, TypeError) as exc:
        raise InvalidPod(f"{what} holds a value that is not base64") from exc


def expand(text: str, variables: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand `$(NAME)` as third_party/forked/golang/expansion does; also return the names substituted.

    `$$` is an escaped `$`; a reference to an unknown name, an unterminated `$(` and any other `$x` stay as written.
    """
    out: list[str] = []
    used: list[str] = []
    checkpoint = cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            following = text[cursor + 1]
            if following == "(" and (close := text.find(")", cursor + 2)) != -1:
                name = text[cursor + 2:close]
                if name in variables:
                    out.append(variables[name])
                    used.append(name)
                else:
                    out.append(f"$({name})")
                cursor = close
            else:
                out.append("$" if following == "$" else "$" + following)
                cursor += 1
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out), used


async def resolve_env(ctx: PodContext, refs: References) -> dict[str, tuple[EnvVar, ...]]:
    """Every container's final environment, by container name."""
    env: dict[str, tuple[EnvVar, ...]] = {}
    for list_name in CONTAINER_LISTS:
        for index, container in enumerate(ctx.spec.get(list_name) or []):
            env[container["name"]] = await container_env(ctx, refs, container, f"spec.{list_name}[{index}]")
    return env


async def container_env(ctx: PodContext, refs: References, container: Mapping[str, Any],
                        where: str) -> tuple[EnvVar, ...]:
    """envFrom first, then env in order (env overrides envFrom); `$(VAR)` sees only what is defined before it."""
    values: dict[str, str] = {}
    secret: dict[str, bool] = {}
    for index, env_from in enumerate(container.get("envFrom") or []):
        await _env_from(refs, env_from, values, secret, f"{where}.envFrom[{index}]")
    for index, var in enumerate(container.get("env") or []):
        name, value, sensitive = var["name"], var.get("value") or "", False
        if value:
            value, used = expand(value, values)
            # A value built from a Secret's value is as secret as its source.
            sensitive = any(secret[n] for n in used)
        elif var.get("valueFrom"):
            resolved = await _value_from(ctx, refs, container, var, f"{where}.env[{index}].valueFrom")
            if resolved is None:
                continue
            value, sensitive = resolved
        values[name], secret[name] = value, sensitive
    return tuple(EnvVar(name, value, secret[name]) for name, value in values.items())


async def _env_from(refs: References, env_from: Mapping[str, Any], values: dict[str, str],
                    secret: dict[str, bool], where: str) -> None:
    kind: Kind = "secret" if "secretRef" in env_from else "configmap"
    ref = env_from.get("secretRef") or env_from.get("configMapRef")
    if ref is None:
        raise InvalidPod("envFrom names neither a configMapRef nor a secretRef", field=where)
    name = ref.get("name", "")
    found = await refs.require(kind, name, optional=bool(ref.get("optional")), skipping="")
    if found is None:
        return
    prefix = env_from.get("prefix") or ""
    invalid = []
    for key, value in found.env.items():
        if not _is_env_name(prefix + key):
            invalid.append(prefix + key)
            continue
        values[prefix + key], secret[prefix + key] = value, kind == "secret"
    if invalid:
        refs.warn("InvalidEnvironmentVariableNames", f"keys [{', '.join(sorted(invalid))}] from {kind} "
                  f"{refs.namespace}/{name} were skipped since they are invalid as environment variable names")


def _is_env_name(name: str) -> bool:
    # IsEnvVarName also rejects ".", ".." and a leading "..".
    return bool(_ENV_NAME.fullmatch(name)) and not name.startswith("..") and name != "."


async def _value_from(ctx: PodContext, refs: References, container: Mapping[str, Any], var: Mapping[str, Any],
                      where: str) -> tuple[str, bool] | None:
    source, name = var["valueFrom"], var["name"]
    if (ref := source.get("configMapKeyRef")) is not None:
        return await _key_ref(refs, "configmap", ref, f'skipping optional envvar "{name}": ')
    if (ref := source.get("secretKeyRef")) is not None:
        return await _key_ref(refs, "secret", ref, f'skipping optional envvar "{name}": ')
    if (ref := source.get("fieldRef")) is not None:
        return field_value(ctx, ref, f"{where}.fieldRef"), False
    if (ref := source.get("resourceFieldRef")) is not None:
        return resource_value(ctx, ref, container, f"{where}.resourceFieldRef"), False
    if "fileKeyRef" in source:
        # The EnvFiles feature reads a file an init container wrote into a volume: only the runtime can.
        raise NotSupported(f"{where}.fileKeyRef: environment variables from files are not supported")
    raise InvalidPod(f"env var {name!r} names no source vnode knows", field=where)


async def _key_ref(refs: References, kind: Kind, ref: Mapping[str, Any], skipping: str) -> tuple[str, bool] | None:
    name, key, optional = ref.get("name", ""), ref.get("key", ""), bool(ref.get("optional"))
    found = await refs.require(kind, name, optional=optional, skipping=skipping)
    if found is None:
        return None
    if key not in found.env:
        refs.key_missing(kind, name, key, optional=optional, skipping=skipping)
        return None
    return found.env[key], kind == "secret"


# Downward API values, shared with downwardAPI and projected volumes.

_QUALIFIED_NAME = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                             r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def field_value(ctx: PodContext, selector: Mapping[str, Any], where: str) -> str:
    """A fieldRef's value (pkg/fieldpath ExtractFieldPathAsString plus the kubelet's podFieldSelectorRuntimeValue)."""
    version = selector.get("apiVersion") or "v1"
    if version != "v1":
        raise InvalidPod(f"unsupported pod version: {version}", field=f"{where}.apiVersion")
    path = selector.get("fieldPath") or ""
    meta = ctx.meta
    # Subscripted form `metadata.labels['key']`: a missing key gives "".
    if path.endswith("']") and "['" in path:
        base, key = path[:-2].split("['", 1)
        # Label keys and (lower-cased) annotation keys must be qualified names.
        checked = key.lower() if base == "metadata.annotations" else key
        if base in ("metadata.labels", "metadata.annotations") and _is_qualified_name(checked):
            return str((meta.get(base.split(".")[1]) or {}).get(key, ""))
        raise InvalidPod(f"unsupported fieldPath: {path}", field=f"{where}.fieldPath")
    match path:
        case "metadata.name" | "metadata.namespace" | "metadata.uid":
            return str(meta.get(path.split(".")[1], ""))
        case "metadata.labels" | "metadata.annotations":
            return format_map(meta.get(path.split(".")[1]) or {})
        case "spec.nodeName" | "spec.host":  # spec.host: the v1 alias old clients send
            return str(ctx.spec.get("nodeName") or ctx.node_name)
        case "spec.serviceAccountName":
            return str(ctx.spec.get("serviceAccountName", ""))
        case "status.hostIP" | "status.hostIPs":
            return ctx.host_ip
        case "status.podIP" | "status.podIPs":
            return ctx.pod_ip
    raise InvalidPod(f"unsupported fieldPath: {path}", field=f"{where}.fieldPath")


def _is_qualified_name(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_QUALIFIED_NAME.fullmatch(key)) and len(name) <= 63 and len(prefix) <= 253


def format_map(values: Mapping[str, Any]) -> str:
    """pkg/fieldpath FormatMap: `key="value"` lines sorted by key, values quoted as Go's strconv.Quote does."""
    return "\n".join(f"{key}={go_quote(str(values[key]))}" for key in sorted(values))


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # not a valid rune: Go quotes U+FFFD
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def resource_value(ctx: PodContext, selector: Mapping[str, Any], container: Mapping[str, Any] | None,
                   where: str) -> str:
    """A resourceFieldRef's value (pkg/api/v1/resource ExtractContainerResourceValue), limits defaulted from
    node allocatable as the kubelet's defaultPodLimitsForDownwardAPI does."""
    resource = selector.get("resource") or ""
    bound, _, name = resource.partition(".")
    if bound not in ("limits", "requests") or not (name in _RESOURCES or name.startswith("hugepages-")):
        raise InvalidPod(f"unsupported container resource: {resource}", field=f"{where}.resource")
    if wanted := selector.get("containerName"):
        # Found among app containers first, then init containers.
        container = next((c for list_name in ("containers", "initContainers") for c in ctx.spec.get(list_name) or []
                          if c.get("name") == wanted), None)
        if container is None:
            raise InvalidPod(f"container {wanted} not found", field=f"{where}.containerName")
    if container is None:
        raise InvalidPod("a containerName is required", field=f"{where}.containerName")
    # An unset or zero divisor means 1.
    divisor = _quantity(selector.get("divisor") or 0, f"{where}.divisor") or Fraction(1)
    if divisor < 0:
        raise InvalidPod("divisor must be positive", field=f"{where}.divisor")
    raw = ((container.get("resources") or {}).get(bound) or {}).get(name, 0)
    value = _quantity(raw, f"{where}.resource")
    # An unset or zero cpu, memory or ephemeral-storage limit reads as node allocatable (never hugepages).
    if bound == "limits" and value == 0 and name in _RESOURCES and name in ctx.allocatable:
        value = parse_quantity(ctx.allocatable[name])
    if name == "cpu":
        # Both in whole millicores (Quantity.MilliValue rounds up), then the quotient rounded up.
        return str(math.ceil(math.ceil(value * 1000) / math.ceil(divisor * 1000)))
    # Both in whole units (Quantity.Value rounds up), then the quotient rounded up.
    return str(math.ceil(math.ceil(value) / math.ceil(divisor)))


def _quantity(raw: Any, where: str) -> Fraction:
    try:
        return parse_quantity(raw)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise InvalidPod(f"not a quantity: {raw!r}", field=where) from exc
