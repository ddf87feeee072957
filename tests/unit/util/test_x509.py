"""Unit tests for vnode.util.x509: CAs, leaves, CSR signing and PEM files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from vnode.util import x509 as certs

CA = tuple[x509.Certificate, certs.PrivateKey]


@pytest.fixture(scope="module")
def ca() -> CA:
    return certs.new_ca("test-ca", valid_days=30)


def test_new_ca_is_a_self_signed_ca(ca: CA) -> None:
    """The CA carries basicConstraints CA:TRUE and verifies against itself."""
    cert, _ = ca
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    cert.verify_directly_issued_by(cert)


def test_issued_server_cert_passes_strict_webpki_verification(ca: CA) -> None:
    """A server leaf validates under cryptography's RFC 5280 verifier for its DNS and IP SANs."""
    ca_cert, ca_key = ca
    leaf, _ = certs.issue_certificate(ca_cert, ca_key, common_name="srv", dns_names=["localhost"],
                                      ip_addresses=["127.0.0.1"], server=True)
    builder = PolicyBuilder().store(Store([ca_cert]))
    builder.build_server_verifier(x509.DNSName("localhost")).verify(leaf, [])
    builder.build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1"))).verify(leaf, [])


def test_issue_certificate_with_public_key_returns_no_key(ca: CA) -> None:
    """Given a public key, the leaf certifies that key and no private key is generated."""
    ca_cert, ca_key = ca
    own = certs.generate_key()
    leaf, key = certs.issue_certificate(ca_cert, ca_key, common_name="c", client=True,
                                        public_key=own.public_key())
    assert key is None
    assert leaf.public_key() == own.public_key()


def test_rsa_leaf_gets_key_encipherment(ca: CA) -> None:
    """An RSA leaf's KeyUsage includes keyEncipherment, as kubeadm's do."""
    ca_cert, ca_key = ca
    rsa_key = certs.generate_key("rsa")
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    leaf, _ = certs.issue_certificate(ca_cert, ca_key, common_name="r", server=True,
                                      public_key=rsa_key.public_key())
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment is True


def test_leaf_never_outlives_its_ca(ca: CA) -> None:
    """Asking for more days than the CA has left caps NotAfter at the CA's NotAfter."""
    ca_cert, ca_key = ca
    leaf, _ = certs.issue_certificate(ca_cert, ca_key, common_name="long", valid_days=3650)
    assert leaf.not_valid_after_utc == ca_cert.not_valid_after_utc


def test_subject_identity_reads_cn_and_organizations(ca: CA) -> None:
    """subject_identity returns the CN and every O, in order."""
    ca_cert, ca_key = ca
    leaf, _ = certs.issue_certificate(ca_cert, ca_key, common_name="alice", organizations=["dev", "ops"])
    assert certs.subject_identity(leaf) == ("alice", ["dev", "ops"])


def test_signed_csr_carries_subject_and_sans(ca: CA) -> None:
    """sign_csr copies the CSR's subject, DNS and IP SANs into the certificate."""
    ca_cert, ca_key = ca
    csr = certs.build_csr(certs.generate_key(), "system:node:vnode", ["system:nodes"],
                          dns_names=["vnode.local"], ip_addresses=["10.0.0.7"])
    pem = certs.sign_csr(ca_cert, ca_key, csr, usages=["server auth"], valid_seconds=600)
    cert = certs.load_cert_pem(pem)
    assert certs.subject_identity(cert) == ("system:node:vnode", ["system:nodes"])
    assert certs.san_names(cert) == (["vnode.local"], [ipaddress.ip_address("10.0.0.7")])


def test_signed_csr_carries_requested_usages(ca: CA) -> None:
    """Kubernetes usage strings become KeyUsage bits and ExtendedKeyUsage OIDs."""
    ca_cert, ca_key = ca
    csr = certs.build_csr(certs.generate_key(), "n")
    usages = ["digital signature", "key encipherment", "server auth", "client auth"]
    cert = certs.load_cert_pem(certs.sign_csr(ca_cert, ca_key, csr, usages=usages, valid_seconds=600))
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    ekus = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert key_usage.digital_signature and key_usage.key_encipherment
    assert not key_usage.key_cert_sign
    assert ekus == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]


def test_signed_csr_lifetime_follows_valid_seconds(ca: CA) -> None:
    """NotAfter is valid_seconds from now (NotBefore is backdated, as Kubernetes' signer does)."""
    ca_cert, ca_key = ca
    csr = certs.build_csr(certs.generate_key(), "n")
    pem = certs.sign_csr(ca_cert, ca_key, csr, usages=["client auth"], valid_seconds=3600)
    cert = certs.load_cert_pem(pem)
    expected = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3600)
    assert abs(cert.not_valid_after_utc - expected) < dt.timedelta(minutes=1)
    assert cert.not_valid_before_utc < dt.datetime.now(dt.UTC) - dt.timedelta(minutes=4)


def test_sign_csr_rejects_unknown_usage(ca: CA) -> None:
    """A usage string Kubernetes does not define is refused, naming it."""
    ca_cert, ca_key = ca
    csr = certs.build_csr(certs.generate_key(), "n")
    with pytest.raises(ValueError, match="flying"):
        certs.sign_csr(ca_cert, ca_key, csr, usages=["flying"], valid_seconds=600)


def test_sign_csr_rejects_garbage(ca: CA) -> None:
    """Bytes that are not a PEM CSR raise ValueError."""
    ca_cert, ca_key = ca
    with pytest.raises(ValueError, match="certificate request"):
        certs.sign_csr(ca_cert, ca_key, b"nope", usages=[], valid_seconds=600)


def test_write_key_is_private_and_round_trips(tmp_path: Path) -> None:
    """Key files are written 0600 and read back to the same key."""
    key = certs.generate_key()
    path = tmp_path / "sub" / "k.key"
    certs.write_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert certs.key_to_pem(certs.read_key(path)) == certs.key_to_pem(key)


def test_cert_pem_round_trips(tmp_path: Path, ca: CA) -> None:
    """write_cert/read_cert and the DER loader preserve the certificate."""
    cert, _ = ca
    certs.write_cert(tmp_path / "ca.crt", cert)
    assert certs.read_cert(tmp_path / "ca.crt") == cert
    assert certs.load_cert_der(cert.public_bytes(serialization.Encoding.DER)) == cert
