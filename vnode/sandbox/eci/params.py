"""Reading RPC query parameters the way the SDKs flatten them: `Container.1.Command.2`, `Tag.1.Key`, JSON id lists.

Owns parsing and validation of single values (numbers, booleans, id lists) into Python values, raising
`EciApiError` that names the parameter. It must not know about container groups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from vnode.sandbox.eci.errors import EciApiError, invalid, missing

Params = Mapping[str, str]
_INDEXED = re.compile(r"^(\d+)(?:\.(.+))?$")


def indexed(params: Params, prefix: str) -> list[dict[str, str]]:
    """`prefix.N.rest=v` → one dict `{rest: v}` per N, in N order (`prefix.N=v` gives `{"": v}`)."""
    groups: dict[int, dict[str, str]] = {}
    head = prefix + "."
    for key, value in params.items():
        if not key.startswith(head):
            continue
        match = _INDEXED.match(key[len(head):])
        if match is None:
            continue
        groups.setdefault(int(match.group(1)), {})[match.group(2) or ""] = value
    return [groups[n] for n in sorted(groups)]


def listed(params: Params, prefix: str) -> list[str]:
    """`prefix.1=a&prefix.2=b` → `[a, b]` (the SDK's form of a list of strings, e.g. `Command.N`)."""
    return [group[""] for group in indexed(params, prefix) if "" in group]


def required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise missing(name)
    return value


def present(params: Params, name: str) -> str | None:
    """The value, or None when absent, empty, or the SDK's "None" for a field it always sends (e.g. ReadOnly)."""
    value = params.get(name)
    return None if value is None or value in ("", "None") else value


def optional_int(params: Params, name: str, *, low: int, high: int) -> int | None:
    if present(params, name) is None:
        return None
    return integer(params, name, 0, low=low, high=high)


def boolean(params: Params, name: str, default: bool = False) -> bool:
    # Python SDK requests send str(True) = "True"; other SDKs send "true". Unset fields may arrive as "None".
    value = params.get(name)
    if value is None or value in ("", "None"):
        return default
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(name, f"{value!r} is not a boolean")


def number(params: Params, name: str, default: float | None = None) -> float | None:
    value = present(params, name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise invalid(name, f"{value!r} is not a number") from exc


def integer(params: Params, name: str, default: int, *, low: int, high: int) -> int:
    value = present(params, name)
    if value is None:
        return default
    try:
        parsed = int(value)
    except ValueError as exc:
        raise invalid(name, f"{value!r} is not an integer") from exc
    if not low <= parsed <= high:
        raise invalid(name, f"must be between {low} and {high}")
    return parsed


def id_list(params: Params, name: str, *, limit: int = 20) -> list[str] | None:
    """`ContainerGroupIds` is one parameter holding a JSON array of strings; None when absent."""
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        ids = json.loads(value)
    except ValueError as exc:
        raise invalid(name, "must be a JSON array of ids") from exc
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise invalid(name, "must be a JSON array of ids")
    if len(ids) > limit:
        raise invalid(name, f"at most {limit} ids")
    return ids


def tags(params: Params, *, limit: int = 20) -> list[tuple[str, str]]:
    """`Tag.N.Key` / `Tag.N.Value` pairs (a missing value is the empty string)."""
    found = []
    for n, group in enumerate(indexed(params, "Tag"), start=1):
        key = group.get("Key")
        if not key:
            raise missing(f"Tag.{n}.Key")
        value = group.get("Value", "")
        if len(key) > 64 or len(value) > 128:
            raise invalid(f"Tag.{n}", "keys are at most 64 characters, values at most 128")
        if key.startswith(("acs:", "aliyun")):
            raise invalid(f"Tag.{n}.Key", "may not start with acs: or aliyun")
        found.append((key, value))
    if len(found) > limit:
        raise EciApiError("InvalidParameter", f"at most {limit} tags")
    return found
