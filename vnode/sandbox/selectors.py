"""Label selectors, field selectors and node-affinity terms, evaluated as kube-apiserver evaluates them.

Owns parsing of the `labelSelector` / `fieldSelector` query strings into predicates over JSON objects,
the structured metav1.LabelSelector form, the per-resource table of selectable fields, and the
scheduler's nodeSelectorTerm matching. Error messages follow apimachinery's wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector that kube-apiserver would reject with 400 BadRequest; str() is the apiserver's message."""


# --- label selectors -----------------------------------------------------------------------------------

_SPECIAL = frozenset("=!(),><")
_SYMBOLS = frozenset({")", ",", "!", "==", "=", ">", "<", "!=", "("})
_ID, _EOS = "identifier", "end of string"
# The order apimachinery lists binary operators in its "expected:" messages (selection.Operator spellings).
_BINARY = {"in": "in", "notin": "notin", "=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt"}

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', "
             "and must start and end with an alphanumeric character")
_INT64 = re.compile(r"[+-]?[0-9]+")


def _regex_error(msg: str, regex: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{regex}')"


def _key_errors(key: str) -> list[str]:
    """Problems with a label key: an optional DNS-subdomain prefix, '/', then a name of at most 63 bytes."""
    parts = key.split("/")
    if len(parts) > 2:
        return ["a valid label key " + _regex_error(_NAME_MSG, _NAME, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errors: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        elif len(prefix) > 253:
            errors.append("prefix part must be no more than 253 bytes")
        elif not re.fullmatch(_DNS1123_SUBDOMAIN, prefix):
            msg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            msg += "'-' or '.', and must start and end with an alphanumeric character"
            errors.append("prefix part " + _regex_error(msg, _DNS1123_SUBDOMAIN, "example.com"))
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not re.fullmatch(_NAME, name):
        errors.append("name part " + _regex_error(_NAME_MSG, _NAME, "MyName", "my.name", "123-abc"))
    return errors


def _value_errors(value: str) -> list[str]:
    errors = ["must be no more than 63 bytes"] if len(value) > 63 else []
    if value and not re.fullmatch(_NAME, value):
        msg = "a valid label must be an empty string or " + _NAME_MSG.removeprefix("must ")
        errors.append(_regex_error(msg, f"({_NAME})?", "MyValue", "my_value", "12345"))
    return errors


def _invalid(path: str, value: object, detail: str) -> str:
    # field.Invalid quotes strings and renders anything else as JSON.
    shown = f'"{value}"' if isinstance(value, str) else json.dumps(value)
    return f"{path}: Invalid value: {shown}: {detail}"


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # a selection.Operator spelling: in notin = == != exists ! gt lt
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op in ("in", "=", "=="):
            return present and labels[self.key] in self.values
        if self.op in ("notin", "!="):
            # An absent label satisfies a negative requirement.
            return not present or labels[self.key] not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        # gt / lt: the label must exist and parse as an int64, otherwise the requirement does not match.
        if not present or not _INT64.fullmatch(labels[self.key]):
            return False
        actual, bound = int(labels[self.key]), int(next(iter(self.values)))
        return actual > bound if self.op == "gt" else actual < bound


def _requirement(key: str, op: str, values: Iterable[str]) -> _Requirement:
    """labels.NewRequirement: validate key, operator arity and values; all problems reported together."""
    vals = list(values)
    key_errors = _key_errors(key)
    errors = [_invalid("key", key, "; ".join(key_errors))] if key_errors else []
    if op in ("in", "notin") and not vals:
        errors.append(_invalid("values", vals, "for 'in', 'notin' operators, values set can't be empty"))
    elif op in ("=", "==", "!=") and len(vals) != 1:
        errors.append(_invalid("values", vals, "exact-match compatibility requires one single value"))
    elif op in ("exists", "!") and vals:
        errors.append(_invalid("values", vals, "values set must be empty for exists and does not exist"))
    elif op in ("gt", "lt"):
        if len(vals) != 1:
            errors.append(_invalid("values", vals, "for 'Gt', 'Lt' operators, exactly one value is required"))
        errors += [_invalid(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")
                   for i, v in enumerate(vals) if not _INT64.fullmatch(v) or not -(2**63) <= int(v) < 2**63]
    for i, v in enumerate(vals):
        if value_errors := _value_errors(v):
            errors.append(_invalid(f"values[{i}][{key}]", v, "; ".join(value_errors)))
    if errors:
        raise SelectorError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
    return _Requirement(key, op, frozenset(vals))


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal): kind is _ID, _EOS, a symbol, or the keywords 'in' / 'notin'."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i == len(text):
            tokens.append((_EOS, ""))
            return tokens
        start = i
        if text[i] in _SPECIAL:
            # Longest run of special characters that is still a known symbol ("!=" and "==" vs "!" and "=").
            while i < len(text) and text[i] in _SPECIAL and text[start:i + 1] in _SYMBOLS:
                i += 1
            tokens.append((text[start:i], text[start:i]))
            continue
        while i < len(text) and text[i] not in _SPECIAL and text[i] not in " \t\r\n":
            i += 1
        word = text[start:i]
        tokens.append((word if word in ("in", "notin") else _ID, word))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        kind, lit = self.tokens[self.pos]
        # Where a value is expected the keywords 'in' / 'notin' are ordinary identifiers.
        return (_ID if values and kind in ("in", "notin") else kind), lit

    def take(self, values: bool = True) -> tuple[str, str]:
        token = self.peek(values)
        self.pos += 1
        return token

    def parse(self) -> list[_Requirement]:
        requirements: list[_Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind == _EOS:
                return requirements
            if kind not in (_ID, "!"):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as err:
                raise SelectorError(f"unable to parse requirement: {err}") from None
            kind, lit = self.take()
            if kind == _EOS:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            kind, lit = self.peek()
            if kind not in (_ID, "!"):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> _Requirement:
        kind, key = self.take()
        negated = kind == "!"
        if negated:
            kind, key = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{key}', expected: identifier")
        if errors := _key_errors(key):
            raise SelectorError(_invalid("<nil>", key, "; ".join(errors)))
        if negated:
            return _requirement(key, "!", [])
        if self.peek()[0] in (_EOS, ","):
            return _requirement(key, "exists", [])
        kind, lit = self.take(values=False)
        if kind not in _BINARY:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY.values())}")
        op = _BINARY[kind]
        return _requirement(key, op, self.value_set() if op in ("in", "notin") else self.exact_value())

    def exact_value(self) -> list[str]:
        if self.peek()[0] in (_EOS, ","):
            return [""]  # "k=" selects an empty value
        kind, lit = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        return [lit]

    def value_set(self) -> list[str]:
        kind, lit = self.take()
        if kind != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        values: set[str] = set()
        kind, lit = self.peek()
        if kind == ")":
            self.take()
            return [""]  # "k in ()" is the set holding the empty value
        if kind not in (_ID, ","):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        while True:
            kind, lit = self.take()
            if kind == _ID:
                values.add(lit)
                nxt, nlit = self.peek()
                if nxt == ")":
                    break
                if nxt != ",":
                    raise SelectorError(f"found '{nlit}', expected: ',' or ')'")
            elif kind == ",":
                # Leading, doubled or trailing commas each stand for an empty value.
                nxt = self.peek()[0]
                if not values or nxt in (",", ")"):
                    values.add("")
                if nxt == ")":
                    break
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")
        self.take()
        return sorted(values)


def parse_label_selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A predicate over an object's labels; the empty selector matches every object."""
    requirements = _LabelParser(text).parse()
    return lambda labels: all(r.matches(labels) for r in requirements)


_LABEL_SELECTOR_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def match_label_selector_object(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """metav1.LabelSelector: a null selector matches nothing, an empty one everything; requirements AND."""
    if selector is None:
        return False
    requirements = [_requirement(k, "=", [v]) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op = _LABEL_SELECTOR_OPS.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f'"{expr.get("operator", "")}" is not a valid label selector operator')
        requirements.append(_requirement(expr.get("key", ""), op, expr.get("values") or []))
    return all(r.matches(labels) for r in requirements)


# --- field selectors -----------------------------------------------------------------------------------

FieldGetter = Callable[[Mapping[str, Any]], str]


def _lookup(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def field_path(dotted: str) -> FieldGetter:
    """A string field; absent reads as "" (Go zero value), booleans as strconv.FormatBool does."""
    def get(obj: Mapping[str, Any]) -> str:
        value = _lookup(obj, dotted)
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)
    return get


def field_flag(dotted: str) -> FieldGetter:
    """A bool field that selects as "true"/"false", absent being false."""
    return lambda obj: "true" if _lookup(obj, dotted) is True else "false"


def field_first(*getters: FieldGetter) -> FieldGetter:
    """The first non-empty of several getters, for fields kube-apiserver derives with a fallback."""
    return lambda obj: next((v for g in getters if (v := g(obj))), "")


def _pod_ip(obj: Mapping[str, Any]) -> str:
    # The registry selects on podIPs[0]; status.podIP mirrors it in v1 but may be all a client sent.
    ips = _lookup(obj, "status.podIPs")
    first = ips[0].get("ip") if isinstance(ips, list) and ips and isinstance(ips[0], Mapping) else None
    return str(first) if first else field_path("status.podIP")(obj)


_NAME_FIELD = {"metadata.name": field_path("metadata.name")}
_META_FIELDS = {**_NAME_FIELD, "metadata.namespace": field_path("metadata.namespace")}
_EVENT_SOURCE = field_first(field_path("source.component"), field_path("reportingComponent"))
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")

# (group, resource) → field label → getter over the object as stored, following each kind's
# AddFieldLabelConversionFunc (labels accepted) and ToSelectableFields (values). Kinds without a conversion
# func (configmaps, leases, serviceaccounts, ...) accept only metadata.name/namespace, with another message.
SELECTABLE_FIELDS: dict[tuple[str, str], dict[str, FieldGetter]] = {
    ("", "pods"): {
        **_META_FIELDS,
        **{f: field_path(f) for f in ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                      "spec.serviceAccountName", "status.phase", "status.nominatedNodeName")},
        "spec.hostNetwork": field_flag("spec.hostNetwork"),
        "status.podIP": _pod_ip,
        # Old v1 clients send spec.host, which the conversion func renames to spec.nodeName.
        "spec.host": field_path("spec.nodeName"),
    },
    # Cluster-scoped kinds with conversion funcs do not accept metadata.namespace.
    ("", "nodes"): {**_NAME_FIELD, "spec.unschedulable": field_flag("spec.unschedulable")},
    ("", "namespaces"): {**_NAME_FIELD, "status.phase": field_path("status.phase")},
    ("", "secrets"): {**_META_FIELDS, "type": field_path("type")},
    ("", "services"): {**_META_FIELDS, "spec.clusterIP": field_path("spec.clusterIP"),
                       "spec.type": field_path("spec.type")},
    ("", "events"): {
        **_META_FIELDS,
        **{f"involvedObject.{f}": field_path(f"involvedObject.{f}") for f in _INVOLVED},
        **{f: field_path(f) for f in ("reason", "reportingComponent", "type")},
        # "source" is Source.Component, falling back to the reporting controller.
        "source": _EVENT_SOURCE,
    },
    # events.k8s.io shares core Event storage: its labels are renamed onto the stored core v1 fields.
    ("events.k8s.io", "events"): {
        **_META_FIELDS,
        **{f"regarding.{f}": field_path(f"involvedObject.{f}") for f in _INVOLVED},
        **{f: field_path(f) for f in ("reason", "type")},
        "reportingController": field_path("reportingComponent"),
        "source": _EVENT_SOURCE,
    },
    ("certificates.k8s.io", "certificatesigningrequests"): {**_NAME_FIELD,
                                                            "spec.signerName": field_path("spec.signerName")},
}


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, start, escaped = [], 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _unescape(value: str) -> str:
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            # apimachinery prints the rune's code point here, not the character.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(group: str, resource: str, text: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over stored objects of group/resource; terms are ANDed, the empty selector matches all."""
    terms: list[tuple[str, bool, str]] = []
    # Terms are parsed in sorted order, all syntax checked before any field label, as apimachinery does.
    for part in sorted(_split_unescaped(text, ",")) if text else []:
        if not part:
            continue
        # No escaping on the left-hand side: the first operator occurrence splits the term.
        ops = ("!=", "==", "=")
        at = next(((i, op) for i in range(len(part)) for op in ops if part.startswith(op, i)), None)
        if at is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        i, op = at
        terms.append((part[:i], op == "!=", _unescape(part[i + len(op):])))
    table = SELECTABLE_FIELDS.get((group, resource))
    checks: list[tuple[FieldGetter, bool, str]] = []
    for label, negate, value in terms:
        getter = (table or _META_FIELDS).get(label)
        if getter is None:
            if table is not None:
                raise SelectorError(f"field label not supported: {label}")
            # runtime.DefaultMetaV1FieldSelectorConversion's wording, for kinds without a conversion func.
            known = '"metadata.name", "metadata.namespace"'
            raise SelectorError(f'"{label}" is not a known field selector: only {known}')
        checks.append((getter, negate, value))
    return lambda obj: all((get(obj) == value) != negate for get, negate, value in checks)


# --- node affinity -------------------------------------------------------------------------------------

_NODE_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


def node_selector_term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """One nodeSelectorTerm: all its requirements hold. An empty or unparseable term matches no node."""
    expressions, field_reqs = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not field_reqs:
        return False
    metadata = node.get("metadata") or {}
    try:
        requirements = [
            _requirement(e.get("key", ""), _NODE_OPS[e.get("operator", "")], e.get("values") or [])
            for e in expressions
        ]
    except (KeyError, SelectorError):
        return False
    if not all(r.matches(metadata.get("labels") or {}) for r in requirements):
        return False
    fields = {"metadata.name": metadata["name"]} if metadata.get("name") else {}
    for req in field_reqs:
        values = req.get("values") or []
        # Field requirements take exactly one value and only In / NotIn.
        if req.get("operator") not in ("In", "NotIn") or len(values) != 1:
            return False
        # A node without a name skips field matching, as the scheduler's extractNodeFields leaves it empty.
        if fields and (fields.get(req.get("key", ""), "") == values[0]) != (req["operator"] == "In"):
            return False
    return True


def node_selector_matches(terms: Iterable[Mapping[str, Any]], node: Mapping[str, Any]) -> bool:
    """requiredDuringSchedulingIgnoredDuringExecution: the terms are ORed; no terms means no node fits."""
    return any(node_selector_term_matches(term, node) for term in terms)
