"""Generic X.509 helpers on `cryptography`: keys, CAs, leaf certificates, CSRs and PEM files.

Owns certificate mechanics only (the sandbox PKI and the kubelet's serving certs build on it); it must not
know about Kubernetes identities or state-directory layout, and never logs or prints key material.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, overload

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPs = Sequence[str | IPAddress]

# Kubernetes' local signer backdates NotBefore by five minutes to tolerate clock skew between machines.
_BACKDATE = dt.timedelta(minutes=5)

# certificates.k8s.io KeyUsage strings that map onto the X.509 KeyUsage bit string ("signing" is an alias).
_KEY_USAGE_BITS: dict[str, str] = {
    "signing": "digital_signature",
    "digital signature": "digital_signature",
    "content commitment": "content_commitment",
    "key encipherment": "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_KEY_USAGE_FIELDS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                     "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
# ...and those that map onto ExtendedKeyUsage OIDs ("s/mime" is an alias of email protection).
_EXT_KEY_USAGES: dict[str, x509.ObjectIdentifier] = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}


def generate_key(kind: Literal["ec", "rsa"] = "ec", *, rsa_bits: int = 2048) -> PrivateKey:
    """A new private key: EC P-256 by default (what kubeadm and the kubelet use), or RSA."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _sans(dns_names: Iterable[str], ip_addresses: Iterable[str | IPAddress]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return names


def _key_usage(*set_bits: str) -> x509.KeyUsage:
    """The KeyUsage extension with exactly `set_bits` (cryptography's keyword names) asserted."""
    flags = dict.fromkeys(_KEY_USAGE_FIELDS, False)
    flags.update(dict.fromkeys(set_bits, True))
    return x509.KeyUsage(**flags)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: PublicKey,
             not_after: dt.datetime) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        # RFC 5280: positive serial of at most 20 octets; 128 random bits as Go's crypto/x509 callers use.
        .serial_number(secrets.randbits(127) | 1)
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _capped(ca_cert: x509.Certificate, lifetime: dt.timedelta) -> dt.datetime:
    # Kubernetes' signer never issues a certificate that outlives the CA that signed it.
    return min(dt.datetime.now(dt.UTC) + lifetime, ca_cert.not_valid_after_utc)


def _sign(builder: x509.CertificateBuilder, ca_cert: x509.Certificate, ca_key: PrivateKey,
          ) -> x509.Certificate:
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return builder.add_extension(aki, critical=False).sign(ca_key, hashes.SHA256())


def new_ca(common_name: str, valid_days: int = 3650, *, key: PrivateKey | None = None,
           ) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA certificate (path length 0: it signs leaves only) and its key."""
    key = generate_key() if key is None else key
    name = _name(common_name)
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=valid_days)
    cert = (
        _builder(name, name, key.public_key(), not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage("digital_signature", "key_cert_sign", "crl_sign"), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


@overload
def issue_certificate(
    ca_cert: x509.Certificate, ca_key: PrivateKey, *, common_name: str, organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (), ip_addresses: IPs = (), server: bool = False, client: bool = False,
    valid_days: int = 365, public_key: None = None,
) -> tuple[x509.Certificate, PrivateKey]: ...
@overload
def issue_certificate(
    ca_cert: x509.Certificate, ca_key: PrivateKey, *, common_name: str, organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (), ip_addresses: IPs = (), server: bool = False, client: bool = False,
    valid_days: int = 365, public_key: PublicKey,
) -> tuple[x509.Certificate, None]: ...
def issue_certificate(
    ca_cert: x509.Certificate, ca_key: PrivateKey, *, common_name: str, organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (), ip_addresses: IPs = (), server: bool = False, client: bool = False,
    valid_days: int = 365, public_key: PublicKey | None = None,
) -> tuple[x509.Certificate, PrivateKey | None]:
    """A leaf signed by the CA; a fresh key is generated (and returned) unless `public_key` is given."""
    key = generate_key() if public_key is None else None
    pub = key.public_key() if key is not None else public_key
    assert pub is not None
    # kubeadm leaves: digitalSignature, plus keyEncipherment where the key is RSA (key transport).
    rsa_key = isinstance(pub, rsa.RSAPublicKey)
    bits = ("digital_signature", "key_encipherment") if rsa_key else ("digital_signature",)
    builder = (
        _builder(_name(common_name, organizations), ca_cert.subject, pub,
                 _capped(ca_cert, dt.timedelta(days=valid_days)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(*bits), critical=True)
    )
    ekus = [oid for oid, wanted in ((ExtendedKeyUsageOID.SERVER_AUTH, server),
                                    (ExtendedKeyUsageOID.CLIENT_AUTH, client)) if wanted]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if sans := _sans(dns_names, ip_addresses):
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return _sign(builder, ca_cert, ca_key), key


def build_csr(key: PrivateKey, common_name: str, organizations: Sequence[str] = (),
              dns_names: Sequence[str] = (), ip_addresses: IPs = ()) -> bytes:
    """A PEM CERTIFICATE REQUEST (what a kubelet puts in a CertificateSigningRequest's spec.request)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name, organizations))
    if sans := _sans(dns_names, ip_addresses):
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def sign_csr(ca_cert: x509.Certificate, ca_key: PrivateKey, csr_pem: bytes, *, usages: Sequence[str],
             valid_seconds: int) -> bytes:
    """Sign a PEM CSR like Kubernetes' local signer: subject and SANs copied, usages from the CSR object."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise ValueError("certificate request signature does not verify")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ValueError(f"unsupported public key type {type(public_key).__name__}")
    unknown = [u for u in usages if u not in _KEY_USAGE_BITS and u not in _EXT_KEY_USAGES]
    if unknown:
        raise ValueError(f"unsupported key usages: {', '.join(unknown)}")
    bits = [_KEY_USAGE_BITS[u] for u in usages if u in _KEY_USAGE_BITS]
    ekus = list(dict.fromkeys(_EXT_KEY_USAGES[u] for u in usages if u in _EXT_KEY_USAGES))
    builder = _builder(csr.subject, ca_cert.subject, public_key,
                       _capped(ca_cert, dt.timedelta(seconds=valid_seconds)))
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    if bits:
        builder = builder.add_extension(_key_usage(*bits), critical=True)
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        builder = builder.add_extension(san, critical=False)
    except x509.ExtensionNotFound:
        pass
    return cert_to_pem(_sign(builder, ca_cert, ca_key))


def subject_identity(cert: x509.Certificate) -> tuple[str, list[str]]:
    """(common name, organizations): the user name and groups kube-apiserver's x509 authenticator derives."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cns[0].value) if cns else ""), [str(o.value) for o in orgs]


def san_names(cert: x509.Certificate) -> tuple[list[str], list[IPAddress]]:
    """The certificate's DNS and IP subject alternative names."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [ip for ip in san.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return san.get_values_for_type(x509.DNSName), ips


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_to_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM, which Go's tls.X509KeyPair, OpenSSL and kubeconfig `client-key-data` accept."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_cert_pem(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def load_cert_der(data: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(data)


def load_key_pem(data: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


def write_secret_file(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from creation, so the secret is never readable by others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(cert_to_pem(cert))
    os.replace(tmp, path)


def write_key(path: Path, key: PrivateKey) -> None:
    write_secret_file(path, key_to_pem(key))


def read_cert(path: Path) -> x509.Certificate:
    return load_cert_pem(path.read_bytes())


def read_key(path: Path) -> PrivateKey:
    return load_key_pem(path.read_bytes())
