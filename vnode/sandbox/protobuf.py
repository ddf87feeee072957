"""Decoding the Kubernetes protobuf request bodies that kubectl sends, for the kinds where it sends them.

Newer kubectl versions write through typed clients that encode built-in kinds as protobuf (`kubectl certificate
approve` PUTs a CertificateSigningRequest that way) and do not fall back to JSON on 415. The wire format is the
`k8s\\0` magic, then a `runtime.Unknown` envelope holding the object's own message. Only the fields the sandbox
reads are described here (field numbers from k8s.io/api's generated.proto); other kinds still get 415.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"
Schema = dict[int, tuple[str, str, "Schema | None"]]  # field number → (json name, wire kind, sub-schema)


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            yield number, data[pos:pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _time(data: bytes) -> str:
    seconds = dict(_fields(data)).get(1, 0)
    assert isinstance(seconds, int)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema:
            continue
        name, kind, sub = schema[number]
        if kind == "int":
            out[name] = value
            continue
        if not isinstance(value, bytes):
            raise ProtobufError(f"field {name}: expected bytes")
        if kind == "string":
            out[name] = value.decode()
        elif kind == "strings":
            out.setdefault(name, []).append(value.decode())
        elif kind == "bytes64":
            out[name] = base64.b64encode(value).decode()  # JSON carries []byte as base64
        elif kind == "time":
            out[name] = _time(value)
        elif kind == "map":
            entry = dict(_fields(value))
            key, item = entry.get(1, b""), entry.get(2, b"")
            assert isinstance(key, bytes) and isinstance(item, bytes)
            out.setdefault(name, {})[key.decode()] = item.decode()
        elif kind == "message" and sub is not None:
            out[name] = decode(value, sub)
        elif kind == "messages" and sub is not None:
            out.setdefault(name, []).append(decode(value, sub))
    return out


OBJECT_META: Schema = {
    1: ("name", "string", None), 2: ("generateName", "string", None), 3: ("namespace", "string", None),
    5: ("uid", "string", None), 6: ("resourceVersion", "string", None), 7: ("generation", "int", None),
    11: ("labels", "map", None), 12: ("annotations", "map", None), 14: ("finalizers", "strings", None),
}
_CSR_CONDITION: Schema = {
    1: ("type", "string", None), 2: ("reason", "string", None), 3: ("message", "string", None),
    4: ("lastUpdateTime", "time", None), 5: ("lastTransitionTime", "time", None), 6: ("status", "string", None),
}
_CSR_SPEC: Schema = {
    1: ("request", "bytes64", None), 7: ("signerName", "string", None), 8: ("expirationSeconds", "int", None),
    5: ("usages", "strings", None), 2: ("username", "string", None), 3: ("uid", "string", None),
    4: ("groups", "strings", None),
}
_CSR_STATUS: Schema = {1: ("conditions", "messages", _CSR_CONDITION), 2: ("certificate", "bytes64", None)}
KINDS: dict[tuple[str, str], Schema] = {
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): {
        1: ("metadata", "message", OBJECT_META), 2: ("spec", "message", _CSR_SPEC),
        3: ("status", "message", _CSR_STATUS)},
}


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a `k8s\\0`-framed object of a kind in `KINDS`; raises ProtobufError otherwise."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = dict(_fields(body[len(MAGIC):]))
    type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("malformed runtime.Unknown envelope")
    meta = decode(type_meta, {1: ("apiVersion", "string", None), 2: ("kind", "string", None)})
    schema = KINDS.get((meta.get("apiVersion", ""), meta.get("kind", "")))
    if schema is None:
        raise ProtobufError(f"protobuf bodies of {meta.get('kind')} are not supported")
    return {**meta, **decode(raw, schema)}
