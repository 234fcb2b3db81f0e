"""A session's CA signs only the names it was made for; its leaves chain to it and end with the session."""

from __future__ import annotations

import time

import pytest
from cryptography import x509

from control_plane.inspection.ca import issue_leaf, new_session_ca


def test_a_ca_is_constrained_to_its_names() -> None:
    now = time.time()
    ca = new_session_ca("s-0123456789abcdef", ["api.example.test", "git.example.test"], now + 3600, now)
    cert = x509.load_pem_x509_certificate(ca.cert_pem)
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert [n.value for n in constraints.value.permitted_subtrees or []] == ["api.example.test", "git.example.test"]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    assert ca.permits("api.example.test") and not ca.permits("other.test") and not ca.permits("xapi.example.test")


def test_a_leaf_names_one_host_and_ends_with_the_session() -> None:
    now = time.time()
    ca = new_session_ca("s-0123456789abcdef", ["api.example.test"], now + 7200, now)
    leaf = issue_leaf(ca, "api.example.test", now + 600, now)
    cert = x509.load_pem_x509_certificate(leaf.chain_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.test"]
    assert abs(cert.not_valid_after_utc.timestamp() - (now + 600)) < 2
    assert leaf.chain_pem.endswith(ca.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))


def test_a_ca_refuses_other_names() -> None:
    now = time.time()
    ca = new_session_ca("s-0123456789abcdef", ["api.example.test"], now + 3600, now)
    with pytest.raises(ValueError):
        issue_leaf(ca, "other.test", now + 600, now)
