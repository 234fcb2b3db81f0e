"""Certificates of the control channel: a private CA, the control plane's server certificate, Envoy's client one.

No file I/O: PEM bytes in, PEM bytes out. Keys are ECDSA P-256 (BoringSSL in Envoy and gRPC both take them).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The name Envoy checks the control plane's certificate for (SNI and SAN), whatever address it dials.
SERVER_NAME = "sandgate-control-plane"
VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def mint_ca(now: datetime.datetime) -> KeyPair:
    """A CA that signs only this control channel's two certificates (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sandgate control channel CA")])
    cert = (
        _builder(name, name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pair(cert, key)


def mint_server(ca: KeyPair, now: datetime.datetime) -> KeyPair:
    """The control plane's certificate: DNS name SERVER_NAME, server authentication only."""
    san = x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)])
    return _leaf(ca, SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH, now, san)


def mint_envoy(ca: KeyPair, node_id: str, now: datetime.datetime) -> KeyPair:
    """An Envoy's client certificate. Its common name is the node id it may open xDS streams for (1-64 chars)."""
    return _leaf(ca, node_id, ExtendedKeyUsageOID.CLIENT_AUTH, now)


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def signed_by(cert: x509.Certificate, ca: KeyPair) -> bool:
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _leaf(
    ca: KeyPair, subject: str, usage: x509.ObjectIdentifier, now: datetime.datetime, *extra: x509.ExtensionType
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        _builder(name, ca.cert.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    ca_key = serialization.load_pem_private_key(ca.key_pem, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return _pair(builder.sign(ca_key, hashes.SHA256()), key)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
    )  # fmt: skip


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _pair(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    return KeyPair(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
