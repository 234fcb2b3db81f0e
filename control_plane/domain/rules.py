"""Egress rules: parsing, validation and matching. Pure: no I/O."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from control_plane.domain.hostnames import canonical_host, is_ip, refuse_broad, refuse_numeric
from control_plane.domain.paths import parse_paths
from control_plane.errors import FailedPrecondition, InvalidArgument

DEFAULT_PORTS = (80, 443)
SECRET_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
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
    """One allowed destination: an exact host or a `*.` wildcard, its ports, and what its requests may be.

    `methods` and `paths` (globs, see domain/paths.py) apply to plain HTTP and, with `inspect`, to the HTTPS
    requests inside a tunnel, which Sandgate then decrypts; `credential` names a secret injected there."""

    host: str
    ports: tuple[int, ...] = DEFAULT_PORTS
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    inspect: bool = False
    credential: str = ""

    @property
    def limits_requests(self) -> bool:
        """Whether the rule says anything about the requests themselves (which an opaque tunnel hides)."""
        return bool(self.methods or self.paths)

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
        return {
            "host": self.host,
            "ports": list(self.ports),
            "methods": list(self.methods),
            "paths": list(self.paths),
            "inspect": self.inspect,
            "credential": self.credential,
        }


def rule_from_dict(raw: dict[str, object]) -> EgressRule:
    """A stored rule (already validated when it was written) back to its value; older rows lack the new fields."""
    return EgressRule(
        str(raw["host"]),
        tuple(raw["ports"]),  # type: ignore[arg-type]
        tuple(raw["methods"]),  # type: ignore[arg-type]
        tuple(raw.get("paths") or ()),  # type: ignore[arg-type]
        bool(raw.get("inspect", False)),
        str(raw.get("credential") or ""),
    )


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
    paths: Iterable[str] = (),
    inspect: bool = False,
    credential: str = "",
    field: str = "egress",
    allow_broad: bool = False,
    limits: RuleLimits = DEFAULT_LIMITS,
) -> EgressRule:
    """Validate one rule given as plain values; errors name `field` (e.g. `egress[2].host`; `host` if "")."""
    prefix = f"{field}." if field else ""
    rule = EgressRule(
        host=normalize_host(host, f"{prefix}host", allow_broad=allow_broad, limits=limits),
        ports=parse_ports(ports, f"{prefix}ports", limits),
        methods=parse_methods(methods, f"{prefix}methods"),
        paths=parse_paths(paths, f"{prefix}paths"),
        inspect=inspect,
        credential=parse_credential_name(credential, f"{prefix}credential"),
    )
    check_inspectable(rule, field)
    return rule


def parse_credential_name(name: str, field: str) -> str:
    """A secret's name as a rule names it: "" (none) or 1-64 of `[A-Za-z0-9_.-]`."""
    if name and not SECRET_NAME.fullmatch(name):
        raise InvalidArgument("a secret name is 1-64 letters, digits, '_', '.' or '-'", field=field)
    return name


def check_inspectable(rule: EgressRule, field: str) -> None:
    """Inspection needs a TLS server name to issue a certificate for, and a credential needs inspection:
    a secret is never sent where Sandgate cannot see the request (plain HTTP, or an opaque tunnel)."""
    if rule.inspect and (rule.is_wildcard or rule.is_cidr or is_ip(rule.host)):
        raise InvalidArgument(
            "inspect needs an exact host name (not a wildcard, address or range)", field=field or "inspect"
        )
    if rule.credential and not rule.inspect:
        raise InvalidArgument(
            f"credential {rule.credential!r} needs inspect: true; a secret is only sent inside inspected HTTPS",
            field=f"{field}.credential" if field else "credential",
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


def check_credentials(rules: Iterable[EgressRule], exists: Callable[[str], bool], field: str = "egress") -> None:
    """FailedPrecondition naming the first rule whose credential names no stored secret (the rule is well
    formed; the secret is to be stored first)."""
    for rule in rules:
        if rule.credential and not exists(rule.credential):
            raise FailedPrecondition(
                f"no secret named {rule.credential!r}; store it first (PUT /v1/secrets/{rule.credential})",
                field=f"{field}.credential" if field else "credential",
            )


def check_rule_count(count: int, field: str, limits: RuleLimits = DEFAULT_LIMITS) -> None:
    """InvalidArgument naming `field` if a rule set would hold more than `limits.max_rules` rules."""
    if count > limits.max_rules:
        raise InvalidArgument(f"at most {limits.max_rules} rules are allowed (max_rules), got {count}", field=field)


def _rule_from_mapping(item: dict[str, object], field: str, allow_broad: bool, limits: RuleLimits) -> EgressRule:
    host, ports, methods = item.get("host", ""), item.get("ports") or [], item.get("methods") or []
    paths, inspect, credential = item.get("paths") or [], item.get("inspect", False), item.get("credential") or ""
    if not isinstance(host, str):
        raise InvalidArgument("must be a string", field=f"{field}.host")
    if not isinstance(ports, list) or not all(isinstance(p, int) and not isinstance(p, bool) for p in ports):
        raise InvalidArgument("must be a list of integers", field=f"{field}.ports")
    methods, paths = _strings(methods, f"{field}.methods"), _strings(paths, f"{field}.paths")
    if not isinstance(inspect, bool):
        raise InvalidArgument("must be true or false", field=f"{field}.inspect")
    if not isinstance(credential, str):
        raise InvalidArgument("must be a string", field=f"{field}.credential")
    return parse_rule(
        host, ports, methods, paths=paths, inspect=inspect, credential=credential,
        field=field, allow_broad=allow_broad, limits=limits,
    )  # fmt: skip


def _strings(value: object, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise InvalidArgument("must be a list of strings", field=field)
    return value


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
