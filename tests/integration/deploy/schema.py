"""An offline structural check of Kubernetes objects against the API's own types (kubernetes_asyncio's models,
generated from the OpenAPI schema): every field name known at its place, every value of the declared shape.

The sandbox API server has no schemas (it checks what kube-apiserver's strategies check), so this is the check a
server would do on field names and types (`fieldValidation=Strict`); it does not check required fields or value
ranges.
"""

from __future__ import annotations

import re
from typing import Any

from kubernetes_asyncio import client as models

_SCALARS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float)}


def schema_errors(obj: dict[str, Any]) -> list[str]:
    """Problems found in one object (empty when it fits), each naming the field path."""
    group_version = str(obj.get("apiVersion", ""))
    version = group_version.rsplit("/", 1)[-1]
    model = f"{version.capitalize()}{obj.get('kind', '')}"
    if not hasattr(models, model):
        return [f"no model {model} for {group_version} {obj.get('kind')}"]
    errors: list[str] = []
    _check(obj, model, obj.get("kind", ""), errors)
    return errors


def _check(value: Any, type_name: str, path: str, errors: list[str]) -> None:
    if (inner := re.fullmatch(r"list\[(.+)\]", type_name)) is not None:
        if not isinstance(value, list):
            errors.append(f"{path}: want a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(item, inner[1], f"{path}[{i}]", errors)
    elif (inner := re.fullmatch(r"dict\(str, (.+)\)", type_name)) is not None:
        if not isinstance(value, dict):
            errors.append(f"{path}: want a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(item, inner[1], f"{path}[{key}]", errors)
    elif type_name in _SCALARS:
        # bool is an int in Python; the API's int fields refuse true/false.
        if not isinstance(value, _SCALARS[type_name]) or (type_name != "bool" and isinstance(value, bool)):
            errors.append(f"{path}: want {type_name}, got {value!r}")
    elif type_name in ("object", "datetime", "date"):
        return  # IntOrString, RawExtension, timestamps: any JSON value
    else:
        cls = getattr(models, type_name)
        if not isinstance(value, dict):
            errors.append(f"{path}: want an object ({type_name}), got {type(value).__name__}")
            return
        by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
        for key, item in value.items():
            if key not in by_json:
                errors.append(f"{path}.{key}: unknown field of {type_name}")
                continue
            _check(item, cls.openapi_types[by_json[key]], f"{path}.{key}", errors)
