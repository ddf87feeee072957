"""`/openapi/v2`: a minimal OpenAPI document, enough for kubectl's client-side validation to proceed.

kubectl's default `--validate=strict` fetches the v2 document (protobuf, gnostic's `openapi_v2.Document`) before
create/apply/replace and gives up if the server has none. The sandbox publishes a document with no paths and no
definitions, so kubectl finds no schema to check a kind against. kubectl still sends `fieldValidation=Strict`;
the sandbox does not detect unknown fields (it has no schemas), it validates what its strategies check.
"""

from __future__ import annotations

import json

from vnode import KUBERNETES_VERSION

# kube-apiserver answers the protobuf document as plain bytes.
PROTOBUF_TYPE = "application/octet-stream"
TITLE = "Kubernetes"


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    length = len(payload)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return bytes([(number << 3) | 2]) + bytes(varint) + payload


def document_protobuf() -> bytes:
    # openapi_v2.Document: swagger = 1, info = 2; Info: title = 1, version = 2.
    info = _field(1, TITLE.encode()) + _field(2, f"v{KUBERNETES_VERSION}".encode())
    return _field(1, b"2.0") + _field(2, info)


def document_json() -> bytes:
    return json.dumps({"swagger": "2.0", "info": {"title": TITLE, "version": f"v{KUBERNETES_VERSION}"},
                       "paths": {}, "definitions": {}}).encode()
