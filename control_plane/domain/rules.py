"""Egress rules: parsing, validation and matching. Pure: no I/O."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from control_plane.errors import InvalidArgument

DEFAULT_PORTS = (80, 443)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_RULES = 256
MAX_CIDR_ADDRESSES = 256


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
        return [self.host] if _is_ip(self.host) else []

    def matches_host(self, host: str) -> bool:
        if self.is_cidr:
            return _is_ip(host) and ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(self.host)
        if self.is_wildcard:
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host

    def allows(self, host: str, port: int) -> bool:
        return port in self.ports and self.matches_host(host)

    def to_dict(self) -> dict[str, object]:
        return {"host": self.host, "ports": list(self.ports), "methods": list(self.methods)}


def normalize_host(raw: str, field: str = "host", *, allow_broad: bool = False) -> str:
    """Lower-case, punycode and validate a rule host; raise InvalidArgument naming `field`."""
    host = raw.strip().rstrip(".").lower()
    if not host:
        raise InvalidArgument("must not be empty", field=field)
    if host == "*":
        raise InvalidArgument("'*' is too broad: it would allow every destination; list the hosts", field=field)
    if "/" in host:
        return _cidr(host, raw, field)
    if _is_ip(host):
        return str(ipaddress.ip_address(host.strip("[]")))
    wildcard = host.startswith("*.")
    name = host[2:] if wildcard else host
    if "*" in name:
        raise InvalidArgument(
            f"{raw!r}: '*' is allowed only as the whole first label, as in '*.example.com'", field=field
        )
    name = _to_ascii(name, raw, field)
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InvalidArgument(f"{raw!r} is not a valid host name", field=field)
    if wildcard and len(labels) < 2 and not allow_broad:
        raise InvalidArgument(f"{raw!r} is too broad: a wildcard needs at least two labels after '*.'", field=field)
    if not wildcard and len(labels) < 2 and name != "localhost" and not allow_broad:
        raise InvalidArgument(f"{raw!r} is not a fully qualified host name", field=field)
    return f"*.{name}" if wildcard else name


def _cidr(host: str, raw: str, field: str) -> str:
    """A CIDR rule: matched by enumerating its addresses, so it may hold at most MAX_CIDR_ADDRESSES."""
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError as exc:
        raise InvalidArgument(f"{raw!r} is not a valid CIDR range", field=field) from exc
    if network.num_addresses > MAX_CIDR_ADDRESSES:
        raise InvalidArgument(
            f"{raw!r} holds {network.num_addresses} addresses; a rule may name at most {MAX_CIDR_ADDRESSES} "
            "(an IPv4 /24)",
            field=field,
        )
    return str(network)


def _to_ascii(name: str, raw: str, field: str) -> str:
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidArgument(f"{raw!r} is not a valid internationalized host name", field=field) from exc


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def parse_ports(ports: Iterable[int], field: str = "ports") -> tuple[int, ...]:
    out = sorted(set(ports))
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
) -> EgressRule:
    """Validate one rule given as plain values; errors name `field` (e.g. `egress[2].host`)."""
    return EgressRule(
        host=normalize_host(host, f"{field}.host", allow_broad=allow_broad),
        ports=parse_ports(ports, f"{field}.ports"),
        methods=parse_methods(methods, f"{field}.methods"),
    )


def parse_rules(
    raw: Sequence[dict[str, object]], field: str = "egress", *, allow_broad: bool = False
) -> tuple[EgressRule, ...]:
    """Validate a list of `{host, ports, methods}` mappings into a sorted, de-duplicated rule set."""
    if len(raw) > MAX_RULES:
        raise InvalidArgument(f"at most {MAX_RULES} rules are allowed, got {len(raw)}", field=field)
    rules = [_rule_from_mapping(item, f"{field}[{i}]", allow_broad) for i, item in enumerate(raw)]
    return merge_rules(rules)


def _rule_from_mapping(item: dict[str, object], field: str, allow_broad: bool) -> EgressRule:
    host, ports, methods = item.get("host", ""), item.get("ports") or [], item.get("methods") or []
    if not isinstance(host, str):
        raise InvalidArgument("must be a string", field=f"{field}.host")
    if not isinstance(ports, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in ports):
        raise InvalidArgument("must be a list of integers", field=f"{field}.ports")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise InvalidArgument("must be a list of strings", field=f"{field}.methods")
    return parse_rule(host, ports, methods, field=field, allow_broad=allow_broad)


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
    """`host[:port]` (IPv6 in brackets) to a lower-case host and a port; None if malformed."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[1:end], authority[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = authority.partition(":")
    if not host or (port_text and not port_text.isdigit()):
        return None
    port = int(port_text) if port_text else default_port
    return (host.rstrip("."), port) if 0 < port < 65536 else None
