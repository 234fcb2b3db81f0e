"""The default forbidden ranges cover what the security issue lists; exceptions carve out only themselves."""

from __future__ import annotations

import pytest

from control_plane.domain.destinations import DEFAULT_FORBIDDEN, is_forbidden, parse_cidrs
from control_plane.errors import InvalidArgument


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "224.0.0.251", "0.0.0.0", "255.255.255.255",
        "::1", "::", "fd00::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
    ],
)  # fmt: skip
def test_default_forbids(address: str) -> None:
    assert is_forbidden(address, DEFAULT_FORBIDDEN)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("2002:7f00:1::1", "6to4 of 127.0.0.1"),
        ("2002:a00:1::", "6to4 of 10.0.0.1"),
        ("::7f00:1", "IPv4-compatible 127.0.0.1"),
        ("::a00:1", "IPv4-compatible 10.0.0.1"),
        ("::ffff:0:7f00:1", "IPv4-translated (SIIT) 127.0.0.1"),
        ("::ffff:0:a9fe:a9fe", "IPv4-translated 169.254.169.254"),
        ("64:ff9b:1::a00:1", "local-use NAT64 of 10.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation (RFC 9637)"),
        ("2001:2::1", "benchmarking"),
        ("2001:10::1", "deprecated ORCHID"),
        ("100::1", "discard-only"),
        ("5f00::1", "segment routing"),
        ("fec0::1", "deprecated site-local"),
        ("192.0.0.170", "NAT64 discovery"),
        ("192.0.0.1", "IETF protocol assignments"),
        ("192.0.2.1", "TEST-NET-1"),
        ("198.51.100.1", "TEST-NET-2"),
        ("203.0.113.1", "TEST-NET-3"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.254", "benchmarking"),
        ("192.88.99.1", "deprecated 6to4 relay"),
    ],
)
def test_default_forbids_forms_that_lead_to_private_or_unrouted_space(address: str, why: str) -> None:
    assert is_forbidden(address, DEFAULT_FORBIDDEN), why


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1", "2001:4860:4860::8888",
        "198.20.0.1", "192.0.3.1", "192.31.196.1", "192.52.193.1", "192.175.48.1", "2620:4f:8000::1",
        "2001:3::1", "2001:4:112::1", "2001:20::1", "2003::1",
    ],
)  # fmt: skip
def test_default_allows_public_addresses(address: str) -> None:
    """Globally reachable, special-purpose ones included (AS112, AMT, ORCHIDv2): docs/SECURITY.md."""
    assert not is_forbidden(address, DEFAULT_FORBIDDEN)


def test_every_default_range_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "SECURITY.md").read_text()
    assert not [cidr for cidr in DEFAULT_FORBIDDEN if f"`{cidr}`" not in doc]


def test_an_exception_carves_out_only_itself() -> None:
    assert not is_forbidden("127.0.0.1", DEFAULT_FORBIDDEN, ["127.0.0.1/32"])
    assert is_forbidden("127.0.0.2", DEFAULT_FORBIDDEN, ["127.0.0.1/32"])


def test_cidrs_are_validated_and_normalized() -> None:
    assert parse_cidrs(["10.1.2.3/8", "::1"], "x") == ("10.0.0.0/8", "::1/128")
    with pytest.raises(InvalidArgument) as err:
        parse_cidrs(["10.0.0.0/8", "nope"], "forbidden_cidrs")
    assert err.value.field == "forbidden_cidrs[1]"
