"""Client-side TLS from a sandbox kubeconfig, for benchmarks that talk HTTP directly."""

from __future__ import annotations

import base64
import ssl
import tempfile
from pathlib import Path

import yaml


def client_from_kubeconfig(path: Path) -> tuple[str, ssl.SSLContext]:
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        context.load_cert_chain(cert, key)
    return cluster["server"], context
