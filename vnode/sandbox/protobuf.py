"""Decoding the Kubernetes protobuf request bodies that kubectl sends into the dicts the JSON path produces.

Since 1.32, client-go's generated clientsets default to `application/vnd.kubernetes.protobuf` for built-in kinds, so
kubectl's typed writes (`create configmap|secret|serviceaccount|namespace|service|token|deployment|role|
clusterrole|rolebinding|clusterrolebinding`, `certificate approve`) arrive as protobuf whatever discovery says, and
client-go falls back to JSON on 415 only for CBOR. The wire format
is the `k8s\\0` magic, then a `runtime.Unknown` envelope holding TypeMeta and the object's own message. Layouts
live in `protobuf_kinds.py`; a kind or field not described there is refused (415), never silently dropped, and
malformed bytes are a ProtobufError (400). This module must not interpret the object: validation and defaulting
stay with the registry, as for JSON bodies.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from vnode.sandbox.protobuf_kinds import KINDS, TYPE_META, Field, Message

MAGIC = b"k8s\x00"
_INT64_SIGN = 1 << 63
_UINT64 = 1 << 64


class ProtobufError(ValueError):
    """The body is not well-formed protobuf of the kind it claims to be."""


class UnsupportedProtobuf(ProtobufError):
    """Well-formed, but a kind or field the sandbox has no layout for."""


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
    """(field number, value): varints as ints, length-delimited fields as bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            yield number, data[pos:pos + length]
            pos += length
        else:  # no Kubernetes field described here uses fixed32/fixed64 or groups
            raise ProtobufError(f"unexpected wire type {wire} for field {number}")


def _signed(value: int) -> int:
    # int32 and int64 negatives are both sent as ten-byte two's complement varints.
    return value - _UINT64 if value >= _INT64_SIGN else value


def _text(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"string field is not UTF-8: {exc}") from exc


def _time(value: bytes) -> str | None:
    if not value:
        return None  # metav1.Time marshals the zero time as an empty message; JSON drops it
    seconds = dict(_fields(value)).get(1, 0)
    if not isinstance(seconds, int):
        raise ProtobufError("Time.seconds: expected a varint")
    try:
        moment = datetime.fromtimestamp(_signed(seconds), UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ProtobufError(f"Time out of range: {seconds}") from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(value: bytes) -> tuple[str, bytes]:
    """A map entry: key = 1, value = 2; either may be absent when empty."""
    key: int | bytes = b""
    item: int | bytes = b""
    for number, part in _fields(value):
        if number == 1:
            key = part
        elif number == 2:
            item = part
    if not isinstance(key, bytes) or not isinstance(item, bytes):
        raise ProtobufError("map entry: expected length-delimited key and value")
    return _text(key), item


def _int_or_string(value: bytes) -> int | str:
    parts = dict(_fields(value))
    kind, number, text = parts.get(1, 0), parts.get(2, 0), parts.get(3, b"")
    if not isinstance(kind, int) or not isinstance(number, int) or not isinstance(text, bytes):
        raise ProtobufError("IntOrString: unexpected wire types")
    return _text(text) if kind == 1 else _signed(number)  # type 0 is Int, 1 is String


def _put(out: dict[str, Any], field: Field, value: int | bytes) -> None:
    if field.kind == "ignore":
        return
    if isinstance(value, int):
        if field.kind in ("int", "flag"):
            if value:
                out[field.name] = _signed(value) if field.kind == "int" else True
        elif field.kind == "optint":
            out[field.name] = _signed(value)
        elif field.kind == "bool":
            out[field.name] = bool(value)
        else:
            raise ProtobufError(f"field {field.name}: expected length-delimited bytes, got a varint")
        return
    if field.kind == "string":
        if value:
            out[field.name] = _text(value)
    elif field.kind == "strings":
        out.setdefault(field.name, []).append(_text(value))
    elif field.kind == "bytes":
        out[field.name] = base64.b64encode(value).decode()  # JSON carries []byte as base64
    elif field.kind == "time":
        moment = _time(value)
        if moment is not None:
            out[field.name] = moment
    elif field.kind in ("map", "bytesmap", "listmap"):
        key, item = _entry(value)
        mapping = out.setdefault(field.name, {})
        if field.kind == "map":
            mapping[key] = _text(item)
        elif field.kind == "bytesmap":
            mapping[key] = base64.b64encode(item).decode()
        else:
            mapping[key] = decode_message(item, _EXTRA_VALUE)["items"] if item else []
    elif field.kind == "intorstr":
        out[field.name] = _int_or_string(value)
    elif field.kind in ("message", "messages") and field.message is not None:
        decoded = decode_message(value, field.message)
        if field.kind == "message":
            out[field.name] = decoded
        else:
            out.setdefault(field.name, []).append(decoded)
    else:
        raise ProtobufError(f"field {field.name}: expected a varint, got bytes")


_EXTRA_VALUE = Message("ExtraValue", {1: Field("items", "strings")})


def decode_message(data: bytes, message: Message) -> dict[str, Any]:
    """One message as its JSON dict; raises UnsupportedProtobuf for a field number `message` does not describe."""
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        field = message.fields.get(number)
        if field is None:
            raise UnsupportedProtobuf(f"field {number} of {message.name} is not supported")
        _put(out, field, value)
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a `k8s\\0`-framed object of a kind in `protobuf_kinds.KINDS` into its JSON dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    type_meta: int | bytes = b""
    raw: int | bytes = b""
    for number, value in _fields(body[len(MAGIC):]):
        if number == 1:
            type_meta = value
        elif number == 2:
            raw = value
        elif number == 3 and value:  # runtime.Unknown.contentEncoding: apiserver clients never compress objects
            raise UnsupportedProtobuf("content-encoded objects are not supported")
    if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
        raise ProtobufError("malformed runtime.Unknown envelope")
    meta = decode_message(type_meta, TYPE_META)
    message = KINDS.get((meta.get("apiVersion", ""), meta.get("kind", "")))
    if message is None:
        raise UnsupportedProtobuf(f"protobuf bodies of {meta.get('kind') or 'unknown kinds'} are not supported")
    return {**meta, **decode_message(raw, message)}
