"""Decoding kubectl's protobuf request bodies into the dicts the JSON path produces."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.sandbox import kubectl_protobuf_bodies as captured
from vnode.sandbox.protobuf import MAGIC, ProtobufError, UnsupportedProtobuf, decode_object

# What kubectl 1.27 sent as JSON for the same commands (creationTimestamp: null dropped).
EXPECTED_FROM_KUBECTL: list[tuple[bytes, dict[str, Any]]] = [
    (captured.CONFIGMAP_FROM_LITERALS,
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b", "c": "d"}}),
    (captured.CONFIGMAP_FROM_FILES,
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "files"}, "data": {"txt.txt": "hello\nworld\n"},
      "binaryData": {"bin.dat": "1DR+Zg1J/Thnq6fm+0y1GmjlaVwdN6cKtrfJsQE9B26Kg1Ryf30Wy+Q41WaeAmk8"
                                "yP10bZ4Xp8CDLliDAAmzZQ=="}}),
    (captured.CONFIGMAP_IN_NAMESPACE_WITH_HASH,
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inns-g8gmdgtdf8", "namespace": "team-a"},
      "data": {"x": ""}}),
    (captured.SECRET_GENERIC,
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "data": {"t": "eA=="}, "type": "Opaque"}),
    (captured.SECRET_DOCKER_REGISTRY,
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "reg"}, "type": "kubernetes.io/dockerconfigjson",
      "data": {".dockerconfigjson": base64.b64encode(
          b'{"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}}').decode()}}),
    (captured.SERVICE_ACCOUNT, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}),
    (captured.NAMESPACE,
     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}}),
    (captured.SERVICE_CLUSTER_IP,
     {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
      "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
               "selector": {"app": "web"}, "type": "ClusterIP"},
      "status": {"loadBalancer": {}}}),
    (captured.TOKEN_REQUEST,
     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
      "spec": {"audiences": ["a1", "a2"], "expirationSeconds": 1200,
               "boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "token"}},
      "status": {}}),
]


# A small encoder, enough to build bodies kubectl would send.

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negatives as ten-byte two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _map(number: int, entries: dict[str, bytes]) -> bytes:
    return b"".join(_bytes(number, _bytes(1, key.encode()) + _bytes(2, value)) for key, value in entries.items())


def _object(api_version: str, kind: str, body: bytes) -> bytes:
    type_meta = _bytes(1, api_version.encode()) + _bytes(2, kind.encode())
    return MAGIC + _bytes(1, type_meta) + _bytes(2, body) + _bytes(3, b"") + _bytes(4, b"")


def _meta(name: str, **extra: bytes) -> bytes:
    # Go writes every non-pointer ObjectMeta field, empty or not; creationTimestamp (8) as an empty Time.
    return _bytes(1, name.encode()) + b"".join(_bytes(n, b"") for n in (2, 3, 4, 5, 6)) + _int(7, 0) + \
        _bytes(8, b"") + b"".join(extra.values())


keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@pytest.mark.parametrize(("body", "expected"), EXPECTED_FROM_KUBECTL,
                         ids=[expected["kind"] + str(i) for i, (_, expected) in enumerate(EXPECTED_FROM_KUBECTL)])
def test_kubectl_bodies_decode_as_kubectl_json(body: bytes, expected: dict[str, Any]) -> None:
    """Bodies captured from kubectl 1.33 decode to what kubectl 1.27 sent as JSON for the same command."""
    assert decode_object(body) == expected


@given(data=st.dictionaries(keys, texts, max_size=4), binary=st.dictionaries(keys, st.binary(max_size=40), max_size=4),
       labels=st.dictionaries(keys, texts, max_size=3), immutable=st.none() | st.booleans())
def test_configmap_fields_round_trip(data: dict[str, str], binary: dict[str, bytes], labels: dict[str, str],
                                     immutable: bool | None) -> None:
    """Any ConfigMap data, binaryData (base64 in JSON), labels and immutable decode to their JSON form."""
    body = _bytes(1, _meta("cm", labels=_map(11, {k: v.encode() for k, v in labels.items()})))
    body += _map(2, {k: v.encode() for k, v in data.items()}) + _map(3, binary)
    if immutable is not None:
        body += _int(4, int(immutable))
    decoded = decode_object(_object("v1", "ConfigMap", body))
    expected_meta: dict[str, Any] = {"name": "cm", **({"labels": labels} if labels else {})}
    assert decoded["metadata"] == expected_meta
    assert decoded.get("data", {}) == data
    assert decoded.get("binaryData", {}) == {k: base64.b64encode(v).decode() for k, v in binary.items()}
    assert decoded.get("immutable") == immutable


@given(data=st.dictionaries(keys, st.binary(max_size=40), max_size=4),
       string_data=st.dictionaries(keys, texts, max_size=3), secret_type=texts)
def test_secret_fields_round_trip(data: dict[str, bytes], string_data: dict[str, str], secret_type: str) -> None:
    """Secret data becomes base64 strings, stringData stays text, and an empty type is omitted as in JSON."""
    body = _bytes(1, _meta("s")) + _map(2, data) + _bytes(3, secret_type.encode())
    body += _map(4, {k: v.encode() for k, v in string_data.items()})
    decoded = decode_object(_object("v1", "Secret", body))
    assert decoded.get("data", {}) == {k: base64.b64encode(v).decode() for k, v in data.items()}
    assert decoded.get("stringData", {}) == string_data
    assert decoded.get("type") == (secret_type or None)


def test_object_meta_carries_owner_references_finalizers_and_versions() -> None:
    """Owner references keep an explicit false, and uid, resourceVersion, generation and finalizers come through."""
    owner = _bytes(5, b"v1") + _bytes(1, b"Pod") + _bytes(3, b"build-7") + _bytes(4, b"u-1") + _int(6, 0)
    meta = _bytes(1, b"cm") + _bytes(5, b"u-2") + _bytes(6, b"42") + _int(7, 3) + _bytes(13, owner) + \
        _bytes(14, b"example.com/keep") + _bytes(8, _int(1, 1_700_000_000))
    decoded = decode_object(_object("v1", "ConfigMap", _bytes(1, meta)))
    assert decoded["metadata"] == {
        "name": "cm", "uid": "u-2", "resourceVersion": "42", "generation": 3,
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "build-7", "uid": "u-1", "controller": False}],
        "finalizers": ["example.com/keep"], "creationTimestamp": "2023-11-14T22:13:20Z"}


def test_negative_pointer_ints_decode_signed() -> None:
    """A negative int64 (ten-byte varint) decodes as the negative number, not its unsigned bit pattern."""
    meta = _bytes(1, b"cm") + _int(10, -1)
    assert decode_object(_object("v1", "ConfigMap", _bytes(1, meta)))["metadata"]["deletionGracePeriodSeconds"] == -1


def test_csr_extra_decodes_as_string_lists() -> None:
    """CSR spec.extra (map of ExtraValue) decodes to lists, as its JSON form has them."""
    extra = _map(6, {"scopes": _bytes(1, b"a") + _bytes(1, b"b"), "empty": b""})
    decoded = decode_object(_object("certificates.k8s.io/v1", "CertificateSigningRequest",
                                    _bytes(1, _meta("csr")) + _bytes(2, _bytes(7, b"example.com/x") + extra)))
    assert decoded["spec"] == {"signerName": "example.com/x", "extra": {"scopes": ["a", "b"], "empty": []}}


def test_unknown_kind_is_unsupported() -> None:
    """A kind with no layout is refused by name (the server answers 415)."""
    with pytest.raises(UnsupportedProtobuf, match="protobuf bodies of StatefulSet are not supported"):
        decode_object(_object("apps/v1", "StatefulSet", _bytes(1, _meta("web"))))


def test_unknown_field_is_unsupported_not_dropped() -> None:
    """A field number the layout does not describe is refused rather than silently lost."""
    with pytest.raises(UnsupportedProtobuf, match="field 9 of ConfigMap is not supported"):
        decode_object(_object("v1", "ConfigMap", _bytes(1, _meta("cm")) + _bytes(9, b"x")))


@pytest.mark.parametrize("body", [
    b"{}",  # no magic
    _object("v1", "ConfigMap", _bytes(1, _meta("cm")))[:-12],  # truncated inside the object
    _object("v1", "ConfigMap", _int(2, 1)),  # a varint where a map entry belongs
    _object("v1", "ConfigMap", _bytes(1, _bytes(1, b"\xff\xfe"))),  # a name that is not UTF-8
])
def test_malformed_bodies_are_decode_errors(body: bytes) -> None:
    """Malformed bytes raise ProtobufError but not UnsupportedProtobuf, so the server answers 400 rather than 415."""
    with pytest.raises(ProtobufError) as caught:
        decode_object(body)
    assert not isinstance(caught.value, UnsupportedProtobuf)
