"""Egress rules: parsing, validation and matching. Pure: no I/O."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from control_plane.domain.hostnames import canonical_host, is_ip, refuse_broad, refuse_numeric
from control_plane.errors import InvalidArgument

DEFAULT_PORTS = (80, 443)
# What a sandbox reaches through its own proxy to read its rules and propose new ones (docs/ARCHITECTURE.md).
SANDBOX_API_HOST = "sandgate.internal"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class RuleLimits:
    """How large one session's rule set may be (settings of the same names; see docs/CONFIG.md)."""

    max_rules: int = 256
    max_ports_per_rule: int = 64
    max_cidr_addresses: int = 256  # an IPv4 /24
    max_route_domains: int = 8192  # Envoy virtual-host domains of one session's routes (see expansion.py)


DEFAULT_LIMITS = RuleLimits()


@dataclass(frozen=True, order=True)
class EgressRule:
    """One allowed destination: an exact host or a `*.` wildcard, its ports, its plain-HTTP methods."""

    host: str
    ports: tuple[int, ...] = DEFAULT_PORTS
    methods: tuple[str, ...] = ()

    @property
    def is_wildcard(self) -> bool:
        return self.host.startswith("*.")

    @property
    def is_cidr(self) -> bool:
        return "/" in self.host

    def addresses(self) -> list[str]:
        """For an IP or CIDR rule, every address it names; empty for a host name."""
        if self.is_cidr:
            return [str(a) for a in ipaddress.ip_network(self.host)]
        return [self.host] if is_ip(self.host) else []

    @property
    def host_count(self) -> int:
        """How many names Envoy matches this rule by: a CIDR's addresses, else one (without listing them)."""
        return ipaddress.ip_network(self.host).num_addresses if self.is_cidr else 1

    def matches_host(self, host: str) -> bool:
        if self.is_cidr:
            return is_ip(host) and ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(self.host)
        if self.is_wildcard:
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def allows(self, host: str, port: int) -> bool:
        return port in self.ports and self.matches_host(host)

    def to_dict(self) -> dict[str, object]:
        return {"host": self.host, "ports": list(self.ports), "methods": list(self.methods)}


def normalize_host(
    raw: str, field: str = "host", *, allow_broad: bool = False, limits: RuleLimits = DEFAULT_LIMITS
) -> str:
    """The canonical form of a new rule's host (see `hostnames`); InvalidArgument naming `field` if it may
    not be named: numeric names, broad names (unless `allow_broad`), CIDRs over `limits.max_cidr_addresses`."""
    host = canonical_host(raw, field)
    if "/" in host:
        size = ipaddress.ip_network(host).num_addresses
        if size > limits.max_cidr_addresses:
            raise InvalidArgument(
                f"{raw!r} holds {size} addresses; a rule may name at most {limits.max_cidr_addresses} "
                "(max_cidr_addresses): each address is matched by name, once per port",
                field=field,
            )
        return host
    if is_ip(host):
        return host
    if host == SANDBOX_API_HOST:
        raise InvalidArgument(f"{host} is Sandgate's own name inside a sandbox; no rule may name it", field=field)
    refuse_numeric(host, field)
    if not allow_broad:
        refuse_broad(host, field)
    return host


def parse_ports(ports: Iterable[int], field: str = "ports", limits: RuleLimits = DEFAULT_LIMITS) -> tuple[int, ...]:
    """Sorted, de-duplicated ports, each 1-65535, at most `limits.max_ports_per_rule`; none means 80 and 443."""
    out = sorted(set(ports))
    check_port_count(len(out), field, limits)
    for port in out:
        if not 1 <= port <= 65535:
            raise InvalidArgument(f"port {port} is out of range 1-65535", field=field)
    return tuple(out) if out else DEFAULT_PORTS


def parse_methods(methods: Iterable[str], field: str = "methods") -> tuple[str, ...]:
    out = sorted({m.strip().upper() for m in methods})
    for method in out:
        if method not in HTTP_METHODS:
            raise InvalidArgument(f"{method!r} is not an HTTP method Sandgate can limit", field=field)
    return tuple(out)


def parse_rule(
    host: str,
    ports: Iterable[int] = (),
    methods: Iterable[str] = (),
    *,
    field: str = "egress",
    allow_broad: bool = False,
    limits: RuleLimits = DEFAULT_LIMITS,
) -> EgressRule:
    """Validate one rule given as plain values; errors name `field` (e.g. `egress[2].host`; `host` if "")."""
    prefix = f"{field}." if field else ""
    return EgressRule(
        host=normalize_host(host, f"{prefix}host", allow_broad=allow_broad, limits=limits),
        ports=parse_ports(ports, f"{prefix}ports", limits),
        methods=parse_methods(methods, f"{prefix}methods"),
    )


def parse_rules(
    raw: Sequence[dict[str, object]],
    field: str = "egress",
    *,
    allow_broad: bool = False,
    limits: RuleLimits = DEFAULT_LIMITS,
) -> tuple[EgressRule, ...]:
    """Validate a list of `{host, ports, methods}` mappings into a sorted, de-duplicated rule set.

    Each rule is checked against `limits`; the whole set, once it meets the policy, is checked by
    `expansion.route_size_problem`."""
    check_rule_count(len(raw), field, limits)
    rules = [_rule_from_mapping(item, f"{field}[{i}]", allow_broad, limits) for i, item in enumerate(raw)]
    return merge_rules(rules)


def check_port_count(count: int, field: str, limits: RuleLimits = DEFAULT_LIMITS) -> None:
    """InvalidArgument naming `field` if one rule would list more than `limits.max_ports_per_rule` ports."""
    if count > limits.max_ports_per_rule:
        raise InvalidArgument(
            f"a rule may list at most {limits.max_ports_per_rule} ports (max_ports_per_rule), got {count}", field=field
        )


def check_rule_count(count: int, field: str, limits: RuleLimits = DEFAULT_LIMITS) -> None:
    """InvalidArgument naming `field` if a rule set would hold more than `limits.max_rules` rules."""
    if count > limits.max_rules:
        raise InvalidArgument(f"at most {limits.max_rules} rules are allowed (max_rules), got {count}", field=field)


def _rule_from_mapping(item: dict[str, object], field: str, allow_broad: bool, limits: RuleLimits) -> EgressRule:
    host, ports, methods = item.get("host", ""), item.get("ports") or [], item.get("methods") or []
    if not isinstance(host, str):
        raise InvalidArgument("must be a string", field=f"{field}.host")
    if not isinstance(ports, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in ports):
        raise InvalidArgument("must be a list of integers", field=f"{field}.ports")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise InvalidArgument("must be a list of strings", field=f"{field}.methods")
    return parse_rule(host, ports, methods, field=field, allow_broad=allow_broad, limits=limits)


def merge_rules(rules: Iterable[EgressRule]) -> tuple[EgressRule, ...]:
    """One rule per host: later rules for the same host replace earlier ones."""
    by_host = {rule.host: rule for rule in rules}
    return tuple(sorted(by_host.values()))


def find_rule(rules: Iterable[EgressRule], host: str, port: int) -> EgressRule | None:
    """The rule that allows host:port, preferring an exact host over a wildcard."""
    candidates = [r for r in rules if r.allows(host, port)]
    candidates.sort(key=lambda r: (r.is_wildcard, -len(r.host)))
    return candidates[0] if candidates else None


def split_authority(authority: str, default_port: int) -> tuple[str, int] | None:
    """`host[:port]` (IPv6 in brackets) to a lower-case host and a port; None if malformed.

    Brackets hold an IPv6 address and nothing else, and a name has no empty label (one trailing dot aside):
    `[allowed.test]:80` and `allowed.test..` are not `allowed.test` (Envoy matched them to no rule's virtual
    host, nor to the global deny list's)."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[1:end], authority[end + 1 :]
        if end < 0 or not _is_ipv6(host) or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        return None
    port = int(port_text) if port_text else default_port
    host = host.removesuffix(".")
    if "" in host.split("."):
        return None
    return (host, port) if 0 < port < 65536 else None


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
