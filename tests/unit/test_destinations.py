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


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1"])
def test_default_allows_public_addresses(address: str) -> None:
    assert not is_forbidden(address, DEFAULT_FORBIDDEN)


def test_an_exception_carves_out_only_itself() -> None:
    assert not is_forbidden("127.0.0.1", DEFAULT_FORBIDDEN, ["127.0.0.1/32"])
    assert is_forbidden("127.0.0.2", DEFAULT_FORBIDDEN, ["127.0.0.1/32"])


def test_cidrs_are_validated_and_normalized() -> None:
    assert parse_cidrs(["10.1.2.3/8", "::1"], "x") == ("10.0.0.0/8", "::1/128")
    with pytest.raises(InvalidArgument) as err:
        parse_cidrs(["10.0.0.0/8", "nope"], "forbidden_cidrs")
    assert err.value.field == "forbidden_cidrs[1]"
