"""A session's signing CA and the leaf certificates it issues. Pure: keys and certificates in, PEM out.

Each CA carries X.509 name constraints that permit only the names it was made for: a client verifying
a leaf for any other name rejects the chain, so neither a leaf nor the CA's own key is any use for a
name the session does not inspect (RFC 5280 4.2.1.10: a permitted `api.example.test` also covers its
subdomains; Sandgate inspects exact names only).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class SessionCA:
    """A CA's certificate and private key (PEM), and the names its constraints permit."""

    cert_pem: bytes
    key_pem: bytes
    names: tuple[str, ...]

    def permits(self, name: str) -> bool:
        return any(name == n or name.endswith("." + n) for n in self.names)


@dataclass(frozen=True)
class Leaf:
    """A server certificate chain (leaf, then its CA) and its private key (PEM), for one name."""

    name: str
    chain_pem: bytes
    key_pem: bytes


def new_session_ca(session_id: str, names: Iterable[str], not_after: float, now: float) -> SessionCA:
    """A CA for `session_id` that may sign only `names`, valid until `not_after` (epoch seconds)."""
    permitted = tuple(sorted(set(names)))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sandgate"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Sandgate inspection CA for {session_id}"),
    ])  # fmt: skip
    constraints = x509.NameConstraints(permitted_subtrees=[x509.DNSName(n) for n in permitted], excluded_subtrees=None)
    cert = (
        _builder(subject, subject, key.public_key(), now, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(constraints, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return SessionCA(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), permitted)


def issue_leaf(ca: SessionCA, name: str, not_after: float, now: float) -> Leaf:
    """A server certificate for `name`, signed by `ca`, valid until `not_after`; ValueError if `ca` may not."""
    if not ca.permits(name):
        raise ValueError(f"this CA may not sign {name}")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, min(not_after, _epoch(ca_cert.not_valid_after_utc)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.cert_pem
    return Leaf(name, chain, _key_pem(key))


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, now: float, not_after: float
) -> x509.CertificateBuilder:
    start = datetime.datetime.fromtimestamp(now, datetime.UTC) - CLOCK_SKEW
    end = datetime.datetime.fromtimestamp(not_after, datetime.UTC)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
    )  # fmt: skip


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _epoch(moment: datetime.datetime) -> float:
    return moment.timestamp()
