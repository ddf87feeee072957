"""Unit tests for vnode.sandbox.pki: files under DIR/pki, TLS contexts, kubeconfigs and CSR signing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
import yaml
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from vnode.sandbox.pki import ADMIN_USER, KUBELET_CLIENT_USER, SandboxPKI
from vnode.util import x509 as certs


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SandboxPKI:
    return SandboxPKI.load_or_create(tmp_path_factory.mktemp("state"))


def test_first_start_creates_ca_serving_and_client_certs(tmp_path: Path) -> None:
    """A fresh state dir gets the CA, apiserver, admin and kubelet-client pairs, keys mode 0600."""
    SandboxPKI.load_or_create(tmp_path)
    names = sorted(p.name for p in (tmp_path / "pki").iterdir())
    stems = ("ca", "apiserver", "admin", "apiserver-kubelet-client")
    assert names == sorted(f"{stem}.{ext}" for stem in stems for ext in ("crt", "key"))
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "pki").glob("*.key")} == {0o600}


def test_later_start_reuses_existing_files(tmp_path: Path) -> None:
    """A second start leaves every certificate byte-for-byte unchanged."""
    SandboxPKI.load_or_create(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()}
    SandboxPKI.load_or_create(tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()} == before


def test_new_extra_host_reissues_serving_cert_under_same_ca(tmp_path: Path) -> None:
    """Adding an extra host puts it in the serving cert's SANs while the CA is kept."""
    SandboxPKI.load_or_create(tmp_path)
    ca_before = (tmp_path / "pki" / "ca.crt").read_bytes()
    SandboxPKI.load_or_create(tmp_path, extra_hosts=["sandbox.test", "10.1.2.3"])
    dns, ips = certs.san_names(certs.read_cert(tmp_path / "pki" / "apiserver.crt"))
    assert (tmp_path / "pki" / "ca.crt").read_bytes() == ca_before
    assert set(dns) == {"localhost", "sandbox.test"}
    assert ipaddress.ip_address("10.1.2.3") in ips


def test_client_certs_carry_kube_identities(pki: SandboxPKI) -> None:
    """The admin and kubelet-client certs name their users in CN and system:masters in O."""
    admin = certs.read_cert(pki.client_cert_paths(ADMIN_USER)[0])
    kubelet_client = certs.read_cert(pki.client_cert_paths(KUBELET_CLIENT_USER)[0])
    assert certs.subject_identity(admin) == ("sandbox-admin", ["system:masters"])
    assert certs.subject_identity(kubelet_client) == ("kube-apiserver-kubelet-client", ["system:masters"])


def test_kubeconfig_ca_verifies_serving_cert(pki: SandboxPKI, tmp_path: Path) -> None:
    """The kubeconfig parses with PyYAML and its embedded CA validates the serving cert for 127.0.0.1."""
    path = tmp_path / "kubeconfig"
    pki.write_kubeconfig(path, "https://127.0.0.1:6443")
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    ca = certs.load_cert_pem(base64.b64decode(cluster["certificate-authority-data"]))
    serving = certs.read_cert(pki.dir / "apiserver.crt")
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(loopback)
    verifier.verify(serving, [])
    assert cluster["server"] == "https://127.0.0.1:6443"


def test_kubeconfig_selects_admin_context_and_is_private(pki: SandboxPKI, tmp_path: Path) -> None:
    """current-context points at the vnode-sandbox cluster and the admin cert; the file is 0600."""
    path = tmp_path / "kubeconfig"
    pki.write_kubeconfig(path, "https://127.0.0.1:6443")
    config = yaml.safe_load(path.read_text())
    user = config["users"][0]["user"]
    assert config["current-context"] == "vnode-sandbox"
    assert config["contexts"][0]["context"] == {"cluster": "vnode-sandbox", "user": "sandbox-admin"}
    assert certs.subject_identity(certs.load_cert_pem(base64.b64decode(user["client-certificate-data"])))[0] \
        == "sandbox-admin"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_kubeconfig_carries_the_token(pki: SandboxPKI, tmp_path: Path) -> None:
    """A token kubeconfig authenticates with `token` and no client certificate."""
    path = tmp_path / "viewer.kubeconfig"
    pki.write_token_kubeconfig(path, "https://127.0.0.1:6443", user="viewer", token="t0k")
    config = yaml.safe_load(path.read_text())
    assert config["users"] == [{"name": "viewer", "user": {"token": "t0k"}}]


def test_kubeconfig_for_unknown_cert_user_is_refused(pki: SandboxPKI, tmp_path: Path) -> None:
    """Only built-in certificate users can get a client-cert kubeconfig."""
    with pytest.raises(ValueError, match="nobody"):
        pki.write_kubeconfig(tmp_path / "k", "https://127.0.0.1:1", user="nobody")


def test_sign_csr_uses_the_sandbox_ca(pki: SandboxPKI) -> None:
    """A CSR signed by the PKI chains to DIR/pki/ca.crt."""
    csr = certs.build_csr(certs.generate_key(), "system:node:vnode", ["system:nodes"])
    pem = pki.sign_csr(csr, usages=["digital signature", "server auth"], valid_seconds=600)
    cert = certs.load_cert_pem(pem)
    cert.verify_directly_issued_by(certs.read_cert(pki.ca_cert_path))


def test_kubelet_client_context_skips_kubelet_verification_by_default(pki: SandboxPKI) -> None:
    """Without a kubelet CA the context verifies nothing, like kube-apiserver's default."""
    ctx = pki.kubelet_client_ssl_context()
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_NONE, False)


def test_kubelet_client_context_verifies_against_given_ca(pki: SandboxPKI) -> None:
    """With verify_ca the context requires a kubelet cert chaining to that CA."""
    ctx = pki.kubelet_client_ssl_context(verify_ca=pki.ca_cert_path)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1


@contextlib.asynccontextmanager
async def _identity_server(ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS server answering each connection with the peer certificate's `CN;O,O` or `anonymous`."""
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        line = "anonymous"
        if der:
            common_name, orgs = certs.subject_identity(certs.load_cert_der(der))
            line = f"{common_name};{','.join(orgs)}"
        writer.write(line.encode() + b"\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers, return_exceptions=True)


async def _ask_identity(port: int, ctx: ssl.SSLContext) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    try:
        return await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


async def test_server_exposes_admin_cert_identity(pki: SandboxPKI) -> None:
    """A client presenting the admin cert is accepted and its CN/O reach the server via getpeercert."""
    async with _identity_server(pki.server_ssl_context()) as port:
        line = await _ask_identity(port, pki.client_ssl_context(ADMIN_USER))
    assert line == b"sandbox-admin;system:masters\n"


async def test_server_accepts_client_without_cert(pki: SandboxPKI) -> None:
    """CERT_OPTIONAL: a client with no certificate still completes the handshake."""
    client = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    async with _identity_server(pki.server_ssl_context()) as port:
        line = await _ask_identity(port, client)
    assert line == b"anonymous\n"


async def test_server_rejects_cert_from_foreign_ca(pki: SandboxPKI) -> None:
    """A client certificate that does not chain to the sandbox CA fails the handshake."""
    client = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    trustme.CA().issue_cert("intruder@example.com").configure_cert(client)
    async with _identity_server(pki.server_ssl_context()) as port:
        try:
            line = await _ask_identity(port, client)
        except (ssl.SSLError, ConnectionError):
            line = b""
    assert line == b""


def test_server_context_requires_tls12_and_optional_client_certs(pki: SandboxPKI) -> None:
    """The serving context refuses TLS < 1.2 and verifies client certs only when sent."""
    ctx = pki.server_ssl_context()
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


async def test_server_negotiates_http11_when_client_offers_h2(pki: SandboxPKI) -> None:
    """ALPN picks http/1.1 even for a Go-like client that prefers h2."""
    client = pki.client_ssl_context(ADMIN_USER)
    client.set_alpn_protocols(["h2", "http/1.1"])
    async with _identity_server(pki.server_ssl_context()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client,
                                                       server_hostname="localhost")
        selected = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        await reader.readline()
        writer.close()
        await writer.wait_closed()
    assert selected == "http/1.1"
