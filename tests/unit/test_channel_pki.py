"""The control channel's certificates: what each may do, and which are kept or minted anew at start."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from control_plane.channel.certs import SERVER_NAME, common_name, signed_by
from control_plane.channel.pki import load_or_mint

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def usage(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_the_server_and_envoy_certificates_are_for_their_one_role(tmp_path: Path) -> None:
    pki = load_or_mint(tmp_path, "node-a", NOW)
    server, envoy = pki.server.cert, pki.envoy.cert
    assert server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == [SERVER_NAME]
    assert usage(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert common_name(envoy) == "node-a" and usage(envoy) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert signed_by(server, pki.ca) and signed_by(envoy, pki.ca)
    assert pki.ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert {p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {0o600}


def test_certificates_are_kept_across_starts_and_minted_anew_when_unfit(tmp_path: Path) -> None:
    first = load_or_mint(tmp_path, "node-a", NOW)
    assert load_or_mint(tmp_path, "node-a", NOW + datetime.timedelta(days=30)) == first
    renamed = load_or_mint(tmp_path, "node-b", NOW)
    assert (renamed.ca, renamed.server) == (first.ca, first.server) and common_name(renamed.envoy.cert) == "node-b"
    late = load_or_mint(tmp_path, "node-b", NOW + datetime.timedelta(days=3640))  # within 30 days of expiry
    assert late.ca != first.ca and signed_by(late.envoy.cert, late.ca) and signed_by(late.server.cert, late.ca)
    assert not signed_by(late.envoy.cert, first.ca)
