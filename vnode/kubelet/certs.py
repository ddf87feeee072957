"""The kubelet API's serving certificate: its TLS context, and the `serverTLSBootstrap`-style CSR path.

Owns loading kubelet.tls_cert_file/tls_key_file (or making a self-signed certificate for every node address at
start, as the kubelet does without --tls-cert-file), client-certificate verification against client_ca_file, and
requesting a `kubernetes.io/kubelet-serving` certificate from the cluster. It must not serve connections or decide
who a client is (auth.py reads the verified peer certificate), and never logs or prints key material.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import ssl
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from vnode.clock import Clock
from vnode.config import KubeletSettings
from vnode.errors import ConfigError, NotFound, Retryable
from vnode.kube import paths
from vnode.kube.client import KubeClient
from vnode.util import x509 as certs

log = logging.getLogger(__name__)

SERVING_SIGNER = "kubernetes.io/kubelet-serving"
SELF_SIGNED_DAYS = 365  # client-go's GenerateSelfSignedCertKey: one year
NODES_GROUP = "system:nodes"


def serving_names(node_name: str, addresses: Sequence[str]) -> tuple[list[str], list[str]]:
    """(DNS SANs, IP SANs) for the node name and every address, in order and without repeats."""
    dns: list[str] = []
    ips: list[str] = []
    for raw in (*addresses, node_name):
        address = raw.strip()
        if not address:
            continue
        try:
            ip = str(ipaddress.ip_address(address))
        except ValueError:
            if not address.isascii():
                raise ConfigError(f"node address {address!r}: a DNS name in a certificate must be ASCII "
                                  "(use its punycode form)") from None
            if address.lower() not in dns:
                dns.append(address.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    return dns, ips


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{option}: cannot read {path}: {exc.strerror or exc}") from exc


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    return b""


def _load_files(ctx: ssl.SSLContext, cert_file: Path, key_file: Path, clock: Clock) -> None:
    cert_pem = _read(cert_file, "kubelet.tls_cert_file")
    key_pem = _read(key_file, "kubelet.tls_key_file")
    try:
        leaf = certs.load_cert_pem(cert_pem)
    except ValueError as exc:
        raise ConfigError(f"kubelet.tls_cert_file: {cert_file} is not a PEM certificate: {exc}") from exc
    try:
        certs.load_key_pem(key_pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"kubelet.tls_key_file: {key_file} is not an unencrypted PEM EC or RSA private key: "
                          f"{exc}") from exc
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_no_password)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"kubelet.tls_cert_file/kubelet.tls_key_file: {cert_file} and {key_file} cannot be "
                          f"used together (is the key the certificate's?): {exc}") from exc
    if leaf.not_valid_after_utc <= clock.now():
        log.warning("kubelet serving certificate %s expired at %s; kube-apiserver accepts it only while it does "
                    "not verify kubelet certificates", cert_file, leaf.not_valid_after_utc.isoformat())


def _load_self_signed(ctx: ssl.SSLContext, node_name: str, addresses: Sequence[str], clock: Clock) -> None:
    dns, ips = serving_names(node_name, addresses)
    # client-go's GenerateSelfSignedCertKey (what the kubelet uses): a throwaway CA "<host>-ca@<unix>" signing a
    # leaf "<host>@<unix>", both served.
    unix = int(clock.now().timestamp())
    ca_cert, ca_key = certs.new_ca(f"{node_name}-ca@{unix}", valid_days=SELF_SIGNED_DAYS)
    leaf, key = certs.issue_certificate(ca_cert, ca_key, common_name=f"{node_name}@{unix}", dns_names=dns,
                                        ip_addresses=ips, server=True, valid_days=SELF_SIGNED_DAYS)
    # ssl loads key material only from files: a private (0700) directory that is gone once loaded.
    with tempfile.TemporaryDirectory(prefix="vnode-serving-") as tmp:
        cert_path, key_path = Path(tmp) / "kubelet.crt", Path(tmp) / "kubelet.key"
        certs.write_secret_file(cert_path, certs.cert_to_pem(leaf) + certs.cert_to_pem(ca_cert))
        certs.write_key(key_path, key)
        ctx.load_cert_chain(cert_path, key_path)
    log.info("kubelet API serves a self-signed certificate %s@%d for DNS %s and IPs %s", node_name, unix,
             dns, ips)


def serving_ssl_context(settings: KubeletSettings, *, node_name: str, addresses: Sequence[str],
                        clock: Clock) -> ssl.SSLContext:
    """The kubelet API's TLS server context (TLS 1.2+, HTTP/1.1). Blocking file I/O; raises ConfigError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # aiohttp and the SPDY front speak HTTP/1.1 only; a Go client offered h2 would otherwise try it.
    ctx.set_alpn_protocols(["http/1.1"])
    cert_file, key_file = settings.tls_cert_file, settings.tls_key_file
    if cert_file is not None and key_file is not None:
        _load_files(ctx, cert_file, key_file, clock)
    elif cert_file is not None or key_file is not None:
        given, missing = ("tls_cert_file", "tls_key_file") if cert_file is not None else \
            ("tls_key_file", "tls_cert_file")
        raise ConfigError(f"kubelet.{given} is set but kubelet.{missing} is not: give both, or neither for a "
                          "self-signed certificate")
    else:
        _load_self_signed(ctx, node_name, addresses, clock)
    if settings.client_ca_file is None:
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        ctx.load_verify_locations(cafile=str(settings.client_ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"kubelet.client_ca_file: cannot load {settings.client_ca_file} as PEM CA "
                          f"certificates: {exc}") from exc
    # Go's VerifyClientCertIfGiven: no certificate is fine (a bearer token may follow); one that does not chain
    # to the CA fails the handshake.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


# --- Requesting a certificate from the cluster ------------------------------------------------------------


def serving_usages(key: certs.PrivateKey) -> list[str]:
    """The kubelet's serving-certificate usages: key encipherment only where the key is RSA (key transport)."""
    usages = ["digital signature", "server auth"]
    return [usages[0], "key encipherment", usages[1]] if isinstance(key, rsa.RSAPrivateKey) else usages


def _condition(csr: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (csr.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status", "True") == "True":
            return dict(condition)
    return None


def _issued(csr: Mapping[str, Any], name: str) -> bytes | None:
    """The certificate PEM once issued, None while pending; ConfigError when denied or failed."""
    for kind, verb in (("Denied", "denied"), ("Failed", "failed")):
        condition = _condition(csr, kind)
        if condition is not None:
            why = condition.get("message") or condition.get("reason") or "no reason given"
            raise ConfigError(f"CertificateSigningRequest {name} was {verb}: {why}")
    encoded = (csr.get("status") or {}).get("certificate")
    if not encoded or _condition(csr, "Approved") is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ConfigError(f"CertificateSigningRequest {name}: status.certificate is not base64: {exc}") from exc


async def _wait_for_certificate(client: KubeClient, csr: Mapping[str, Any], name: str, *, clock: Clock,
                                timeout_seconds: float, poll_interval_seconds: float) -> bytes:
    deadline = clock.monotonic() + timeout_seconds
    while (pem := _issued(csr, name)) is None:
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"CertificateSigningRequest {name} was not approved and issued within "
                               f"{timeout_seconds:g} s; approve it with `kubectl certificate approve {name}` "
                               "while vnode waits, or wait longer with --timeout")
        await clock.sleep(min(poll_interval_seconds, remaining))
        try:
            csr = await client.get(paths.certificatesigningrequest_path(name))
        except NotFound as exc:
            raise ConfigError(f"CertificateSigningRequest {name} was deleted before it was issued") from exc
        except Retryable as exc:
            log.warning("reading CertificateSigningRequest %s failed, will retry: %s", name, exc)
    return pem


async def request_serving_certificate(
    client: KubeClient, *, node_name: str, addresses: Sequence[str], key_file: Path, cert_file: Path,
    clock: Clock, timeout_seconds: float, poll_interval_seconds: float = 1.0,
    on_created: Callable[[str], None] | None = None,
) -> str:
    """Ask the cluster for a kubelet-serving certificate and wait until someone approves it; returns the CSR name.

    Like the kubelet with serverTLSBootstrap: a new EC P-256 key, a CSR for CN=system:node:<node>,
    O=system:nodes with SANs for the node name and every address, signer kubernetes.io/kubelet-serving.
    `on_created(name)` runs once the CSR exists (to tell a person what to approve). On issue, the key (0600)
    and the certificate are written atomically. Denied or Failed → ConfigError; no issue in time → TimeoutError.
    """
    key = certs.generate_key()
    dns, ips = serving_names(node_name, addresses)
    request = certs.build_csr(key, f"system:node:{node_name}", [NODES_GROUP], dns_names=dns, ip_addresses=ips)
    body = {
        "apiVersion": paths.CERTIFICATES_V1, "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "csr-"},  # the kubelet's CSR names
        "spec": {"request": base64.b64encode(request).decode("ascii"), "signerName": SERVING_SIGNER,
                 "usages": serving_usages(key)},
    }
    created = await client.create(paths.certificatesigningrequests_path(), body)
    name = str(created["metadata"]["name"])
    log.info("created CertificateSigningRequest %s for node %s (DNS %s, IPs %s)", name, node_name, dns, ips)
    if on_created is not None:
        on_created(name)
    pem = await _wait_for_certificate(client, created, name, clock=clock, timeout_seconds=timeout_seconds,
                                      poll_interval_seconds=poll_interval_seconds)
    try:
        issued = certs.load_cert_pem(pem)
    except ValueError as exc:
        raise ConfigError(f"CertificateSigningRequest {name}: status.certificate is not a PEM certificate") from exc
    if issued.public_key() != key.public_key():
        raise ConfigError(f"CertificateSigningRequest {name}: the issued certificate is not for the requested key")
    certs.write_key(key_file, key)
    certs.write_secret_file(cert_file, pem)
    return name
