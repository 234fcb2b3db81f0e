"""Destination addresses no sandbox may reach, checked by Envoy after DNS resolution. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from control_plane.errors import InvalidArgument

# Every special-purpose range (RFC 6890, IANA's IPv4 and IPv6 special-purpose registries) that is not
# globally reachable, or that leads into private space; docs/SECURITY.md gives the reason for each and
# for the few special-purpose ranges left out (globally reachable anycast: AS112, AMT, ORCHIDv2, ...).
DEFAULT_FORBIDDEN = (
    # IPv4
    "0.0.0.0/8",           # "this network"
    "10.0.0.0/8",          # private (RFC 1918)
    "100.64.0.0/10",       # shared address space, carrier-grade NAT (RFC 6598)
    "127.0.0.0/8",         # loopback
    "169.254.0.0/16",      # link-local, cloud metadata (169.254.169.254)
    "172.16.0.0/12",       # private (RFC 1918)
    "192.0.0.0/24",        # IETF protocol assignments: DS-Lite, NAT64 discovery, PCP/TURN anycast
    "192.0.2.0/24",        # documentation, TEST-NET-1
    "192.88.99.0/24",      # deprecated 6to4 relay anycast (RFC 7526)
    "192.168.0.0/16",      # private (RFC 1918)
    "198.18.0.0/15",       # benchmarking (RFC 2544); also used inside networks and by fake-IP DNS proxies
    "198.51.100.0/24",     # documentation, TEST-NET-2
    "203.0.113.0/24",      # documentation, TEST-NET-3
    "224.0.0.0/4",         # multicast
    "240.0.0.0/4",         # reserved
    "255.255.255.255/32",  # limited broadcast
    # IPv6
    "::/96",               # unspecified, loopback and the deprecated IPv4-compatible form (::a.b.c.d)
    "::ffff:0:0/96",       # IPv4-mapped: the same host as the embedded IPv4 address
    "::ffff:0:0:0/96",     # IPv4-translated (SIIT, RFC 2765)
    "64:ff9b::/96",        # NAT64, well-known prefix: translated to the embedded IPv4 address
    "64:ff9b:1::/48",      # NAT64, local-use prefix (RFC 8215)
    "100::/63",            # discard-only (RFC 6666) and dummy prefix (RFC 9780)
    "2001::/32",           # Teredo: tunnels to the embedded IPv4 server and client
    "2001:2::/48",         # benchmarking
    "2001:10::/28",        # deprecated ORCHID
    "2001:db8::/32",       # documentation
    "2002::/16",           # 6to4: tunnels to the embedded IPv4 address
    "3fff::/20",           # documentation (RFC 9637)
    "5f00::/16",           # segment routing SIDs (RFC 9602)
    "fc00::/7",            # unique local
    "fe80::/10",           # link-local
    "fec0::/10",           # deprecated site-local
    "ff00::/8",            # multicast
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
