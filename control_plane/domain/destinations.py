"""Destination addresses no sandbox may reach, checked by Envoy after DNS resolution. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from control_plane.errors import InvalidArgument

# Loopback, RFC 1918, link-local (with the cloud metadata address), CGNAT, multicast, unspecified,
# broadcast, reserved; and the IPv6 equivalents: loopback, unspecified, v4-mapped, ULA, link-local, multicast.
DEFAULT_FORBIDDEN = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
)  # fmt: skip


def parse_cidrs(values: Iterable[str], field: str) -> tuple[str, ...]:
    """Normalize CIDRs (a bare address is a /32 or /128); raise InvalidArgument naming `field[i]`."""
    out = []
    for i, value in enumerate(values):
        try:
            out.append(str(ipaddress.ip_network(value.strip(), strict=False)))
        except ValueError as exc:
            raise InvalidArgument(f"{value!r} is not an IP address or CIDR range", field=f"{field}[{i}]") from exc
    return tuple(dict.fromkeys(out))


def is_forbidden(address: str, forbidden: Iterable[str], exceptions: Iterable[str] = ()) -> bool:
    """What Envoy's RBAC filter decides, for tests and the docs: in a forbidden range and in no exception."""
    ip = ipaddress.ip_address(address)
    inside = any(ip in ipaddress.ip_network(c) for c in forbidden)
    return inside and not any(ip in ipaddress.ip_network(c) for c in exceptions)
