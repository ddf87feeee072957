"""The kubelet API's TLS context: self-signed or given serving certificates, and client CA verification, checked
over real loopback TLS handshakes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from vnode.clock import ManualClock
from vnode.config import KubeletSettings
from vnode.errors import ConfigError
from vnode.kubelet.certs import serving_ssl_context
from vnode.util import x509 as certs

NODE = "vk-1"
ADDRESSES = ["10.0.0.5", "vk-1.example.internal", "fd00::5"]


def _context(settings: KubeletSettings | None = None) -> ssl.SSLContext:
    return serving_ssl_context(settings or KubeletSettings(), node_name=NODE, addresses=ADDRESSES,
                               clock=ManualClock())


@contextlib.asynccontextmanager
async def _server(ctx: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS server that answers each connection with the client certificate's CN, or `none`."""
    handlers: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        name = certs.subject_identity(certs.load_cert_der(peer))[0] if peer else "none"
        writer.write(name.encode() + b"\n")
        await writer.drain()
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers, return_exceptions=True)


def _client(cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # like kube-apiserver without --kubelet-certificate-authority
    if cert is not None:
        ctx.load_cert_chain(*cert)
    return ctx


async def _talk(port: int, client: ssl.SSLContext) -> tuple[bytes, x509.Certificate]:
    """(the server's answer line, the certificate the server presented)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    try:
        served = certs.load_cert_der(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        return await reader.readline(), served
    finally:
        writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await writer.wait_closed()


def _issue(tmp_path: Path, stem: str, ca: tuple[x509.Certificate, certs.PrivateKey], common_name: str, *,
           server: bool = False, client: bool = False) -> tuple[Path, Path]:
    cert, key = certs.issue_certificate(*ca, common_name=common_name, dns_names=[common_name] if server else [],
                                        server=server, client=client)
    cert_path, key_path = tmp_path / f"{stem}.crt", tmp_path / f"{stem}.key"
    certs.write_cert(cert_path, cert)
    certs.write_key(key_path, key)
    return cert_path, key_path


@pytest.fixture
def cluster_ca(tmp_path: Path) -> tuple[x509.Certificate, certs.PrivateKey]:
    ca = certs.new_ca("cluster-ca", valid_days=2)
    certs.write_cert(tmp_path / "ca.crt", ca[0])
    return ca


async def test_self_signed_certificate_covers_every_address_and_the_node_name() -> None:
    """Unset files: a certificate made at start with IP SANs for IPs and DNS SANs for names and the node."""
    async with _server(_context()) as port:
        _, served = await _talk(port, _client())
    dns, ips = certs.san_names(served)
    assert set(dns) == {"vk-1.example.internal", NODE}
    assert set(ips) == {ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("fd00::5")}


async def test_self_signed_certificate_is_named_like_the_kubelets() -> None:
    """CN <node>@<unix seconds> (client-go's GenerateSelfSignedCertKey), valid for a year, for server auth."""
    async with _server(_context()) as port:
        _, served = await _talk(port, _client())
    unix = int(ManualClock().now().timestamp())
    assert certs.subject_identity(served) == (f"{NODE}@{unix}", [])
    assert 364 <= (served.not_valid_after_utc - served.not_valid_before_utc).days <= 366
    eku = served.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]


async def test_given_files_are_served(tmp_path: Path, cluster_ca: tuple[x509.Certificate, certs.PrivateKey]) -> None:
    """tls_cert_file and tls_key_file: exactly that certificate is presented."""
    cert_path, key_path = _issue(tmp_path, "serving", cluster_ca, "vk-1.example.internal", server=True)
    settings = KubeletSettings(tls_cert_file=cert_path, tls_key_file=key_path)
    async with _server(_context(settings)) as port:
        _, served = await _talk(port, _client())
    assert served == certs.read_cert(cert_path)


@pytest.mark.parametrize(("given", "missing"), [("tls_cert_file", "tls_key_file"), ("tls_key_file", "tls_cert_file")])
def test_one_file_without_the_other_is_a_config_error(tmp_path: Path, given: str, missing: str) -> None:
    """The certificate and key come together: one alone names the missing option."""
    settings = KubeletSettings(**{given: tmp_path / "x.pem"})
    with pytest.raises(ConfigError, match=f"kubelet.{given} is set but kubelet.{missing} is not"):
        _context(settings)


def test_unreadable_certificate_file_is_a_config_error(tmp_path: Path) -> None:
    """A missing file is reported against its option."""
    settings = KubeletSettings(tls_cert_file=tmp_path / "absent.crt", tls_key_file=tmp_path / "absent.key")
    with pytest.raises(ConfigError, match="kubelet.tls_cert_file: cannot read"):
        _context(settings)


def test_key_of_another_certificate_is_a_config_error(
        tmp_path: Path, cluster_ca: tuple[x509.Certificate, certs.PrivateKey]) -> None:
    """A certificate and a key that do not belong together are refused at start."""
    cert_path, _ = _issue(tmp_path, "one", cluster_ca, "one", server=True)
    _, other_key = _issue(tmp_path, "two", cluster_ca, "two", server=True)
    with pytest.raises(ConfigError, match="cannot be used together"):
        _context(KubeletSettings(tls_cert_file=cert_path, tls_key_file=other_key))


def test_unloadable_client_ca_is_a_config_error(tmp_path: Path) -> None:
    """A client CA file with no certificate in it is refused at start."""
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="kubelet.client_ca_file"):
        _context(KubeletSettings(client_ca_file=tmp_path / "ca.crt"))


def test_without_client_ca_no_client_certificate_is_asked_for() -> None:
    """No client CA: CERT_NONE, and never below TLS 1.2."""
    ctx = _context()
    assert (ctx.verify_mode, ctx.minimum_version) == (ssl.CERT_NONE, ssl.TLSVersion.TLSv1_2)


async def test_client_ca_accepts_a_certificate_it_signed(
        tmp_path: Path, cluster_ca: tuple[x509.Certificate, certs.PrivateKey]) -> None:
    """kube-apiserver's kubelet-client certificate from the cluster CA is verified and visible to the server."""
    client_cert = _issue(tmp_path, "apiserver-kubelet-client", cluster_ca, "kube-apiserver-kubelet-client",
                         client=True)
    async with _server(_context(KubeletSettings(client_ca_file=tmp_path / "ca.crt"))) as port:
        line, _ = await _talk(port, _client(client_cert))
    assert line == b"kube-apiserver-kubelet-client\n"


async def test_client_ca_lets_a_client_without_certificate_through(
        tmp_path: Path, cluster_ca: tuple[x509.Certificate, certs.PrivateKey]) -> None:
    """CERT_OPTIONAL: no certificate completes the handshake (a bearer token may authenticate instead)."""
    async with _server(_context(KubeletSettings(client_ca_file=tmp_path / "ca.crt"))) as port:
        line, _ = await _talk(port, _client())
    assert line == b"none\n"


async def test_client_ca_refuses_a_certificate_from_another_ca(
        tmp_path: Path, cluster_ca: tuple[x509.Certificate, certs.PrivateKey]) -> None:
    """A certificate that does not chain to the client CA fails the handshake."""
    stranger = _issue(tmp_path, "stranger", certs.new_ca("other-ca", valid_days=2), "kube-apiserver-kubelet-client",
                      client=True)
    async with _server(_context(KubeletSettings(client_ca_file=tmp_path / "ca.crt"))) as port:
        try:
            line, _ = await _talk(port, _client(stranger))
        except (ssl.SSLError, ConnectionError):
            line = b""
    assert line == b""
