"""The sandbox API server's PKI under `DIR/pki/`: a CA, the serving cert and two client certs.

Creates what is missing (or no longer fits: wrong CA, missing SANs, near expiry) on first use and reuses it on
later starts; builds the TLS contexts and kubeconfigs that use it. It must not authenticate or authorize
requests (auth.py does) and never logs key material.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from vnode.util import x509 as certs

CLUSTER_NAME = "vnode-sandbox"
ADMIN_USER = "sandbox-admin"
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
# Leaves are reissued when they would expire within this window, so a long-lived state dir keeps working.
_RENEW_BEFORE = dt.timedelta(days=1)
_LEAF_DAYS = 365


@dataclass(frozen=True)
class _Leaf:
    stem: str  # file name stem under DIR/pki/
    common_name: str
    organizations: tuple[str, ...]
    server: bool = False
    client: bool = False


# kubeadm's names: apiserver.crt serves the API; apiserver-kubelet-client.crt authenticates it to kubelets.
_SERVING = _Leaf("apiserver", "kube-apiserver", (), server=True)
_CLIENTS = {
    # O=system:masters is the group kube-apiserver always authorizes (the superuser group).
    ADMIN_USER: _Leaf("admin", ADMIN_USER, ("system:masters",), client=True),
    KUBELET_CLIENT_USER: _Leaf(
        "apiserver-kubelet-client", KUBELET_CLIENT_USER, ("system:masters",), client=True
    ),
}


def _same_key(cert: x509.Certificate, key: certs.PrivateKey) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


class SandboxPKI:
    """Certificates for one sandbox state dir; construct with `load_or_create` (blocking file I/O)."""

    def __init__(self, pki_dir: Path, ca_cert: x509.Certificate, ca_key: certs.PrivateKey) -> None:
        self.dir = pki_dir
        self._ca_cert = ca_cert
        self._ca_key = ca_key

    @classmethod
    def load_or_create(cls, state_dir: Path, *, extra_hosts: Sequence[str] = ()) -> SandboxPKI:
        """Reuse `DIR/pki/*` where still valid, (re)issue the rest; `extra_hosts` are added serving SANs."""
        pki_dir = state_dir / "pki"
        pki_dir.mkdir(parents=True, exist_ok=True)
        ca_cert, ca_key = cls._load_or_create_ca(pki_dir)
        pki = cls(pki_dir, ca_cert, ca_key)
        dns = ["localhost"]
        ips: list[certs.IPAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
        for host in extra_hosts:
            try:
                ips.append(ipaddress.ip_address(host))
            except ValueError:
                dns.append(host)
        pki._ensure_leaf(_SERVING, dns, ips)
        for leaf in _CLIENTS.values():
            pki._ensure_leaf(leaf, [], [])
        return pki

    @staticmethod
    def _load_or_create_ca(pki_dir: Path) -> tuple[x509.Certificate, certs.PrivateKey]:
        crt, key_path = pki_dir / "ca.crt", pki_dir / "ca.key"
        try:
            cert, key = certs.read_cert(crt), certs.read_key(key_path)
            if _same_key(cert, key) and cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > _RENEW_BEFORE:
                return cert, key
        except (OSError, ValueError):
            pass
        cert, key = certs.new_ca("vnode-sandbox-ca", valid_days=3650)
        certs.write_key(key_path, key)
        certs.write_cert(crt, cert)
        return cert, key

    def _leaf_usable(self, leaf: _Leaf, dns: Sequence[str], ips: Sequence[certs.IPAddress]) -> bool:
        try:
            cert = certs.read_cert(self.dir / f"{leaf.stem}.crt")
            key = certs.read_key(self.dir / f"{leaf.stem}.key")
            cert.verify_directly_issued_by(self._ca_cert)
        except (OSError, ValueError, TypeError, InvalidSignature):
            return False
        have_dns, have_ips = certs.san_names(cert)
        return (
            _same_key(cert, key)
            and certs.subject_identity(cert) == (leaf.common_name, list(leaf.organizations))
            and set(dns) <= set(have_dns)
            and set(ips) <= set(have_ips)
            and cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > _RENEW_BEFORE
        )

    def _ensure_leaf(self, leaf: _Leaf, dns: Sequence[str], ips: Sequence[certs.IPAddress]) -> None:
        if self._leaf_usable(leaf, dns, ips):
            return
        cert, key = certs.issue_certificate(
            self._ca_cert, self._ca_key, common_name=leaf.common_name, organizations=leaf.organizations,
            dns_names=dns, ip_addresses=ips, server=leaf.server, client=leaf.client, valid_days=_LEAF_DAYS,
        )
        certs.write_key(self.dir / f"{leaf.stem}.key", key)
        certs.write_cert(self.dir / f"{leaf.stem}.crt", cert)

    @property
    def ca_cert_path(self) -> Path:
        return self.dir / "ca.crt"

    def ca_pem(self) -> bytes:
        """The CA certificate in PEM (kubeconfig `certificate-authority-data`, kube-root-ca.crt)."""
        return certs.cert_to_pem(self._ca_cert)

    def client_cert_paths(self, user: str = ADMIN_USER) -> tuple[Path, Path]:
        """(cert, key) files of a built-in client identity (`ADMIN_USER` or `KUBELET_CLIENT_USER`)."""
        try:
            stem = _CLIENTS[user].stem
        except KeyError:
            raise ValueError(f"no client certificate for user {user!r}; known: {sorted(_CLIENTS)}") from None
        return self.dir / f"{stem}.crt", self.dir / f"{stem}.key"

    def server_ssl_context(self) -> ssl.SSLContext:
        """kube-apiserver's TLS: HTTP/1.1 only; a client cert is optional but must chain to the CA if sent."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.dir / f"{_SERVING.stem}.crt", self.dir / f"{_SERVING.stem}.key")
        # --client-ca-file: Go's VerifyClientCertIfGiven, i.e. verify a client cert only when one is sent.
        ctx.load_verify_locations(cafile=self.ca_cert_path)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        # aiohttp serves HTTP/1.1 only; offering h2 would make Go clients (kubectl) pick it and fail.
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def client_ssl_context(self, user: str = ADMIN_USER) -> ssl.SSLContext:
        """A client context trusting the sandbox CA and presenting `user`'s certificate (tests, tools)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_cert_path))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self.client_cert_paths(user))
        return ctx

    def kubelet_client_ssl_context(self, *, verify_ca: Path | None = None) -> ssl.SSLContext:
        """The API server's client context for kubelet calls (logs, exec, proxy)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self.client_cert_paths(KUBELET_CLIENT_USER))
        if verify_ca is None:
            # Without --kubelet-certificate-authority kube-apiserver does not verify kubelet serving certs.
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx.load_verify_locations(cafile=verify_ca)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def sign_csr(self, csr_pem: bytes, *, usages: Sequence[str], valid_seconds: int) -> bytes:
        """Sign a CSR with the sandbox CA (the role of kube-controller-manager's cluster signing)."""
        return certs.sign_csr(
            self._ca_cert, self._ca_key, csr_pem, usages=usages, valid_seconds=valid_seconds
        )

    def write_kubeconfig(self, path: Path, server_url: str, *, user: str = ADMIN_USER) -> None:
        """A kubeconfig (mode 0600) authenticating as a built-in client-certificate user."""
        cert_path, key_path = self.client_cert_paths(user)
        credentials = {
            "client-certificate-data": _b64(cert_path.read_bytes()),
            "client-key-data": _b64(key_path.read_bytes()),
        }
        certs.write_secret_file(path, _kubeconfig_yaml(server_url, self.ca_pem(), user, credentials))

    def write_token_kubeconfig(self, path: Path, server_url: str, *, user: str, token: str) -> None:
        """A kubeconfig (mode 0600) authenticating with a static bearer token from tokens.csv."""
        certs.write_secret_file(path, _kubeconfig_yaml(server_url, self.ca_pem(), user, {"token": token}))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _kubeconfig_yaml(server_url: str, ca_pem: bytes, user: str, credentials: dict[str, str]) -> bytes:
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CLUSTER_NAME,
                      "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False).encode()
