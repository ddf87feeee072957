"""apimachinery's field.Error kinds as (field, reason, message) causes, and Go's `%#v` rendering of their values.

kube-apiserver 1.33 prints a rejected value of a struct or map type with Go syntax (`map[string]string{"a":"b"}`,
`v1.LabelSelector{...}`); 1.34 switched to JSON. The sandbox reports version 1.33, so it prints Go syntax. This
module only formats: it decides nothing about validity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from vnode.sandbox.strategy import Cause


def required(path: str, detail: str = "") -> Cause:
    return (path, "FieldValueRequired", f"Required value: {detail}" if detail else "Required value")


def invalid(path: str, shown: str, detail: str) -> Cause:
    """`shown` is the value already rendered (see `go_value` and the go_* helpers)."""
    return (path, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def not_supported(path: str, shown: str, supported: Iterable[str]) -> Cause:
    values = ", ".join(go_quote(s) for s in supported)
    return (path, "FieldValueNotSupported", f"Unsupported value: {shown}: supported values: {values}")


def forbidden(path: str, detail: str) -> Cause:
    return (path, "FieldValueForbidden", f"Forbidden: {detail}")


def go_quote(text: str) -> str:
    """Go's %q for the printable text that appears in names, labels and kinds."""
    return json.dumps(text, ensure_ascii=False)


def go_value(value: Any) -> str:
    """field.Error's rendering of a scalar: strings quoted, numbers and booleans bare, nil as null."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def go_string_map(value: Mapping[str, Any] | None) -> str:
    """%#v of a map[string]string: fmt prints keys sorted; a nil map is typed nil."""
    if value is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(value.items()))
    return f"map[string]string{{{items}}}"


def go_strings(values: list[Any] | None) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"


def go_label_selector(selector: Mapping[str, Any]) -> str:
    """%#v of a metav1.LabelSelector (a JSON [] decodes to an empty, non-nil slice)."""
    expressions = selector.get("matchExpressions")
    if expressions is None:
        shown = "[]v1.LabelSelectorRequirement(nil)"
    else:
        shown = "[]v1.LabelSelectorRequirement{" + ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{go_quote(str(e.get('key', '')))}, "
            f"Operator:{go_quote(str(e.get('operator', '')))}, Values:{go_strings(e.get('values'))}}}"
            for e in expressions) + "}"
    return f"v1.LabelSelector{{MatchLabels:{go_string_map(selector.get('matchLabels'))}, MatchExpressions:{shown}}}"
