"""Authentication and authorization for the sandbox API server, as kube-apiserver does with static config.

Owns x509 + static-token (`--token-auth-file`) authentication, the RequestInfo resolver, the ABAC
(`--authorization-policy-file`) authorizer, TokenReview/SubjectAccessReview answers and the 401/403 Status
bodies. It must not do HTTP or touch the object store, and never logs or repr()s a token.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from vnode.errors import ConfigError
from vnode.util.x509 import load_cert_der, subject_identity, write_secret_file

SYSTEM_MASTERS = "system:masters"
SYSTEM_AUTHENTICATED = "system:authenticated"
SYSTEM_NODES = "system:nodes"
ABAC_API_VERSION = "abac.authorization.kubernetes.io/v1beta1"
# The service-account issuer kube-apiserver uses as its API audience when a TokenReview names none.
DEFAULT_API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)


@dataclass(frozen=True)
class UserInfo:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()


def _authenticated(user: UserInfo) -> UserInfo:
    # kube's AuthenticatedGroupAdder: every authenticated user is also in system:authenticated.
    if SYSTEM_AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.username, user.uid, (*user.groups, SYSTEM_AUTHENTICATED))


# --- Static tokens (--token-auth-file) -------------------------------------------------------------------


class StaticTokens:
    """token → user, from kube's CSV format `token,user,uid,"group1,group2"`; repr never shows tokens."""

    def __init__(self, users: Mapping[str, UserInfo]) -> None:
        self._users = dict(users)

    def __repr__(self) -> str:
        return f"StaticTokens({len(self._users)} tokens)"

    @classmethod
    def parse(cls, text: str, source: str = "tokens.csv") -> StaticTokens:
        users: dict[str, UserInfo] = {}
        for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
            if not record:
                continue  # Go's encoding/csv skips blank lines too
            if len(record) < 3:
                raise ConfigError(f"token file '{source}' must have at least 3 columns (token, user name, "
                                  f"user uid), found {len(record)} on record {number}")
            if not record[0]:
                continue  # kube warns about and ignores an empty token
            groups = tuple(g for g in record[3].split(",") if g) if len(record) > 3 else ()
            users[record[0]] = UserInfo(record[1], record[2], groups)
        return cls(users)

    @classmethod
    def load(cls, path: Path) -> StaticTokens:
        return cls.parse(path.read_text(), str(path))

    def lookup(self, token: str) -> UserInfo | None:
        return self._users.get(token)

    def token_for(self, username: str) -> str:
        """The first token of `username` (to write a kubeconfig); KeyError if it has none."""
        for token, user in self._users.items():
            if user.username == username:
                return token
        raise KeyError(username)


def ensure_token_file(state_dir: Path) -> Path:
    """`DIR/tokens.csv` (mode 0600), created with random admin, viewer and node tokens if absent."""
    path = state_dir / "tokens.csv"
    if not path.exists():
        rows = [("sandbox-admin", SYSTEM_MASTERS), ("viewer", ""), ("system:node:vnode", SYSTEM_NODES)]
        lines = [f'{secrets.token_urlsafe(32)},{user},{uuid.uuid4()},"{groups}"' for user, groups in rows]
        write_secret_file(path, ("\n".join(lines) + "\n").encode())
    return path


class Authenticator:
    """kube-apiserver's request authenticator chain with x509 client certs first, then bearer tokens."""

    def __init__(self, tokens: StaticTokens, *, issued: Callable[[str], UserInfo | None] | None = None) -> None:
        self._tokens = tokens
        # Tokens the server issued itself (TokenRequest for service accounts), checked after the static file.
        self._issued = issued

    def authenticate(self, peer_cert_der: bytes | None, authorization: str | None) -> UserInfo | None:
        """The caller's identity, or None for 401; `peer_cert_der` must already be verified by TLS."""
        if peer_cert_der:
            try:
                cert = load_cert_der(peer_cert_der)
            except ValueError:
                cert = None
            if (user := _cert_user(cert)) is not None:
                return user
        token = _bearer_token(authorization)
        return self.authenticate_token(token) if token else None

    def authenticate_token(self, token: str) -> UserInfo | None:
        user = self._tokens.lookup(token)
        if user is None and self._issued is not None:
            user = self._issued(token)
        return _authenticated(user) if user is not None else None


def _cert_user(cert: x509.Certificate | None) -> UserInfo | None:
    if cert is None:
        return None
    common_name, organizations = subject_identity(cert)
    # kube's CommonNameUserConversion: no CN, no user (the chain moves on to the next authenticator).
    return _authenticated(UserInfo(common_name, "", tuple(organizations))) if common_name else None


def _bearer_token(authorization: str | None) -> str:
    # kube's bearertoken authenticator: "Bearer <token>", scheme case-insensitive, extra words ignored.
    parts = (authorization or "").strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return ""
    return parts[1]


# --- RequestInfo ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestAttributes:
    verb: str
    path: str
    is_resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def readonly(self) -> bool:
        # authorizer.AttributesRecord.IsReadOnly: get, list and watch.
        return self.verb in ("get", "list", "watch")


class RequestInfoError(ValueError):
    """A /api or /apis path too short to name a resource (kube-apiserver answers 500)."""


_SPECIAL_VERBS = ("proxy", "watch")  # deprecated /api/v1/{verb}/... prefixes; proxy takes no subresource
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> RequestAttributes:
    """kube's RequestInfoFactory.NewRequestInfo with APIPrefixes {api, apis} and groupless prefix api."""
    trimmed = path.strip("/")
    parts = trimmed.split("/") if trimmed else []
    non_resource = RequestAttributes(verb=method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 4):
        return non_resource
    group, rest = (parts[1], parts[2:]) if parts[0] == "apis" else ("", parts[1:])
    version, rest = rest[0], rest[1:]
    if rest[0] in _SPECIAL_VERBS:
        if len(rest) < 2:
            raise RequestInfoError(f"unable to determine kind and namespace from url, {path}")
        verb, rest = rest[0], rest[1:]
    else:
        verb = _METHOD_VERBS.get(method, "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        # /namespaces/{ns}/{resource}/... unless the third part is a subresource of the namespace itself.
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 and verb != "proxy" else ""
    if not name and verb == "get":
        # A GET on a collection is a list, or a watch when ?watch is set to anything but 0/false.
        watch = query.get("watch")
        verb = "watch" if watch is not None and watch.lower() not in ("0", "false") else "list"
        name = _pinned_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestAttributes(verb=verb, path=path, is_resource_request=True, api_group=group,
                             api_version=version, namespace=namespace, resource=rest[0],
                             subresource=subresource, name=name)


def _pinned_name(selector: str) -> str:
    """The name a list/watch pins with `fieldSelector=metadata.name=x` ('' if none or unparsable)."""
    terms, start, in_slash = [], 0, False
    for i, char in enumerate(selector):  # fields.splitTerms: commas split unless backslash-escaped
        if in_slash:
            in_slash = False
        elif char == "\\":
            in_slash = True
        elif char == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    found = ""
    for term in filter(None, terms):
        # fields.splitTerm: the first operator occurrence, trying != then == then = at each position.
        match = re.fullmatch(r"(.*?)(!=|==|=)(.*)", term, re.DOTALL)
        value = _unescape_field_value(match[3]) if match else None
        if match is None or value is None:
            return ""  # the whole selector fails to parse, so no name is derived
        if not found and match[1] == "metadata.name" and match[2] != "!=":
            found = value
    # path.IsValidPathSegmentName: not "." or "..", and no "/" or "%".
    return "" if found in (".", "..") or "/" in found or "%" in found else found


def _unescape_field_value(value: str) -> str | None:
    """fields.UnescapeValue: a backslash may escape only a backslash, comma or equals sign; else None."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 == len(value) or value[i + 1] not in "\\,=":
                return None
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out)


# --- ABAC (--authorization-policy-file) ------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """One ABAC rule; an unset field equals its zero value, so "" matches only "" (use "*" for any)."""

    user: str = ""
    group: str = ""
    readonly: bool = False
    api_group: str = ""
    namespace: str = ""
    resource: str = ""
    non_resource_path: str = ""

    def matches(self, user: UserInfo, attrs: RequestAttributes) -> bool:
        return self._subject(user) and (attrs.readonly or not self.readonly) and self._object(attrs)

    def _subject(self, user: UserInfo) -> bool:
        if self.user and self.user != "*" and self.user != user.username:
            return False
        if self.group and self.group != "*" and self.group not in user.groups:
            return False
        return bool(self.user or self.group)  # a rule naming neither subject matches nobody

    def _object(self, attrs: RequestAttributes) -> bool:
        if attrs.is_resource_request:  # the resource without its subresource: "pods" covers "pods/exec"
            return all(want in ("*", have) for want, have in (
                (self.namespace, attrs.namespace), (self.resource, attrs.resource),
                (self.api_group, attrs.api_group)))
        p = self.non_resource_path
        return p == "*" or p == attrs.path or (p.endswith("*") and attrs.path.startswith(p.rstrip("*")))


_POLICY_FIELDS = {"user": "user", "group": "group", "readonly": "readonly", "apiGroup": "api_group",
                  "namespace": "namespace", "resource": "resource", "nonResourcePath": "non_resource_path"}


def parse_policies(text: str, source: str = "policy.jsonl") -> list[Policy]:
    """One JSON Policy object per line; blank lines and lines starting with # are skipped."""
    policies = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
            if obj.get("apiVersion") != ABAC_API_VERSION or obj.get("kind") != "Policy":
                raise ValueError(f"want apiVersion {ABAC_API_VERSION} and kind Policy")
            spec = obj.get("spec")
            if not isinstance(spec, dict) or set(spec) - set(_POLICY_FIELDS):
                raise ValueError(f"spec must be an object with fields among {sorted(_POLICY_FIELDS)}")
            kwargs = {_POLICY_FIELDS[k]: v for k, v in spec.items()}
            if any(type(v) is not (bool if k == "readonly" else str) for k, v in kwargs.items()):
                raise ValueError("readonly must be a boolean and the other spec fields strings")
            policies.append(Policy(**kwargs))
        except (ValueError, AttributeError) as exc:
            raise ConfigError(f"error reading policy file {source}, line {number}: {exc}") from exc
    return policies


_DEFAULT_POLICY = (
    {"group": SYSTEM_MASTERS},
    {"user": "viewer", "readonly": True},
    {"group": SYSTEM_NODES},
)


def ensure_policy_file(state_dir: Path) -> Path:
    """`DIR/policy.jsonl`, created with the default policy (masters, read-only viewer, nodes) if absent."""
    path = state_dir / "policy.jsonl"
    if not path.exists():
        everything = {"apiGroup": "*", "namespace": "*", "resource": "*", "nonResourcePath": "*"}
        lines = ["# ABAC policy, kube-apiserver --authorization-policy-file format. system:masters is always "
                 "allowed."]
        lines += [json.dumps({"apiVersion": ABAC_API_VERSION, "kind": "Policy", "spec": {**s, **everything}})
                  for s in _DEFAULT_POLICY]
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


class Authorizer:
    """kube's authorizer union for `--authorization-mode=ABAC`: the system:masters group, then the policy."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._policies = tuple(policies)

    @classmethod
    def from_file(cls, path: Path) -> Authorizer:
        return cls(parse_policies(path.read_text(), str(path)))

    def authorize(self, user: UserInfo, attrs: RequestAttributes) -> Decision:
        if SYSTEM_MASTERS in user.groups or any(p.matches(user, attrs) for p in self._policies):
            return Decision(True)
        # ABAC has no deny: it returns NoOpinion with this reason, and the apiserver then forbids.
        return Decision(False, "No policy matched.")


# --- TokenReview and SubjectAccessReview -----------------------------------------------------------------


class ReviewError(ValueError):
    """A review body the apiserver rejects: `code` 400 (BadRequest) or 422 (Invalid)."""

    def __init__(self, message: str, *, code: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.reason = "Invalid" if code == 422 else "BadRequest"


def _object(body: Any, api_version: str, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(body, dict):
        raise ReviewError(f"the body of a {kind} must be a JSON object")
    if body.get("apiVersion", api_version) != api_version or body.get("kind", kind) != kind:
        raise ReviewError(f"expected apiVersion {api_version!r} and kind {kind!r}, "
                          f"got {body.get('apiVersion')!r} and {body.get('kind')!r}")
    spec = body.get("spec", {})
    if not isinstance(spec, dict):
        raise ReviewError(f"{kind}.spec must be an object")
    return body, spec


def _strings(value: Any, where: str, *, is_list: bool = False) -> Any:
    ok = (isinstance(value, list) and all(isinstance(v, str) for v in value)) if is_list \
        else isinstance(value, str)
    if not ok:
        raise ReviewError(f"{where} must be {'a list of strings' if is_list else 'a string'}")
    return value


def _answer(body: dict[str, Any], api_version: str, kind: str, status: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(body.get("metadata") or {})
    metadata.setdefault("creationTimestamp", None)  # what the apiserver echoes for a never-stored object
    return {"kind": kind, "apiVersion": api_version, "metadata": metadata,
            "spec": body.get("spec", {}), "status": status}


def token_review(body: Any, authenticator: Authenticator, *,
                 api_audiences: tuple[str, ...] = DEFAULT_API_AUDIENCES) -> dict[str, Any]:
    """Answer an authentication.k8s.io/v1 TokenReview (static tokens are valid for any audience)."""
    body, spec = _object(body, "authentication.k8s.io/v1", "TokenReview")
    token = _strings(spec.get("token", ""), "spec.token")
    audiences = _strings(spec.get("audiences") or [], "spec.audiences", is_list=True)
    if not token:
        raise ReviewError("token is required for TokenReview in authentication")
    user = authenticator.authenticate_token(token)
    if user is None:
        # kube's bearer-token authenticator error when no token authenticator accepts the token.
        status: dict[str, Any] = {"authenticated": False, "user": {}, "error": "invalid bearer token"}
    else:
        status = {"authenticated": True,
                  "user": {"username": user.username, "uid": user.uid, "groups": list(user.groups)},
                  "audiences": list(audiences or api_audiences)}
    return _answer(body, "authentication.k8s.io/v1", "TokenReview", status)


_RESOURCE_FIELDS = ("namespace", "verb", "group", "version", "resource", "subresource", "name")


def subject_access_review(body: Any, authorizer: Authorizer) -> dict[str, Any]:
    """Answer an authorization.k8s.io/v1 SubjectAccessReview for the user and groups in its spec."""
    body, spec = _object(body, "authorization.k8s.io/v1", "SubjectAccessReview")
    res, non_res = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    user = UserInfo(_strings(spec.get("user", ""), "spec.user"), _strings(spec.get("uid", ""), "spec.uid"),
                    tuple(_strings(spec.get("groups") or [], "spec.groups", is_list=True)))
    errors = []  # kube's ValidateSubjectAccessReviewSpec, answered as 422 Invalid
    if res is not None and non_res is not None:
        errors.append('spec.nonResourceAttributes: Invalid value: "object": cannot be specified in '
                      "combination with resourceAttributes")
    if res is None and non_res is None:
        errors.append('spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes '
                      "or resourceAttributes must be specified")
    if not user.username and not user.groups:
        errors.append('spec.user: Invalid value: "": at least one of user or group must be specified')
    if errors:
        joined = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        raise ReviewError(f'SubjectAccessReview.authorization.k8s.io "" is invalid: {joined}', code=422)
    if res is not None:
        if not isinstance(res, dict):
            raise ReviewError("spec.resourceAttributes must be an object")
        fields = {k: _strings(res.get(k, ""), f"spec.resourceAttributes.{k}") for k in _RESOURCE_FIELDS}
        attrs = RequestAttributes(
            verb=fields["verb"], path="", is_resource_request=True, api_group=fields["group"],
            api_version=fields["version"], namespace=fields["namespace"], resource=fields["resource"],
            subresource=fields["subresource"], name=fields["name"])
    else:
        if not isinstance(non_res, dict):
            raise ReviewError("spec.nonResourceAttributes must be an object")
        attrs = RequestAttributes(verb=_strings(non_res.get("verb", ""), "spec.nonResourceAttributes.verb"),
                                  path=_strings(non_res.get("path", ""), "spec.nonResourceAttributes.path"))
    decision = authorizer.authorize(user, attrs)
    # ABAC never denies outright, so `denied` stays unset: allowed=false + reason is a NoOpinion.
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return _answer(body, "authorization.k8s.io/v1", "SubjectAccessReview", status)


# --- 401 / 403 Status bodies -----------------------------------------------------------------------------


def unauthorized_status() -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def _go_quote(text: str) -> str:
    """Go's %q for the printable text that appears in names and paths."""
    return json.dumps(text, ensure_ascii=False)


def forbidden_message(user: UserInfo, attrs: RequestAttributes) -> str:
    """responsewriters.forbiddenMessage, with its &/</> sanitizing."""
    who = f"User {_go_quote(user.username)} cannot {attrs.verb}"
    if not attrs.is_resource_request:
        msg = f"{who} path {_go_quote(attrs.path)}"
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        scope = "at the cluster scope"
        if attrs.namespace:
            scope = f"in the namespace {_go_quote(attrs.namespace)}"
        msg = f"{who} resource {_go_quote(resource)} in API group {_go_quote(attrs.api_group)} {scope}"
    return msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden_status(user: UserInfo, attrs: RequestAttributes, reason: str = "") -> dict[str, Any]:
    """The 403 Status kube-apiserver sends (apierrors.NewForbidden); `reason` is the authorizer's."""
    error = forbidden_message(user, attrs) + (f": {reason}" if reason else "")
    group_resource = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    if not group_resource:
        message = f"forbidden: {error}"
    elif attrs.name:
        message = f"{group_resource} {_go_quote(attrs.name)} is forbidden: {error}"
    else:
        message = f"{group_resource} is forbidden: {error}"
    # StatusDetails fields are omitempty: a non-resource 403 carries "details": {}.
    pairs = (("name", attrs.name), ("group", attrs.api_group), ("kind", attrs.resource))
    details = {key: value for key, value in pairs if value}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Forbidden", "details": details, "code": 403}
