"""How many Envoy virtual-host domains a session's routes hold, counted without building them. Pure.

Envoy matches a request to a virtual host by name, so the route builder (`xds/builders/route.py`) lists
names: each allowed rule gets one domain per host and port, and one more per host for port 80 (a bare
`host` means port 80); an IP or CIDR rule lists each of its addresses as a host. Each name the global
policy denies gets one bare domain and one per port any of the session's rules uses (80 and 443
always). A /24 rule with 12,000 ports would be 3,072,000 domains: rendering and pushing them stalls the
control plane and Envoy for every session, so the count is capped (`max_route_domains`).
`tests/unit/test_expansion.py` keeps this count equal to what the builder renders.
"""

from __future__ import annotations

from collections.abc import Iterable

from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule, RuleLimits


def rule_domains(rule: EgressRule) -> int:
    """The domains of one allowed rule: hosts (a CIDR's addresses) x ports, plus the bare host for port 80."""
    return rule.host_count * (len(rule.ports) + (80 in rule.ports))


def route_domains(rules: Iterable[EgressRule], denied: tuple[str, ...]) -> int:
    """All domains of a session's routes, given its effective rules and the policy's denied names."""
    rules = tuple(rules)
    ports = {80, 443, *(p for r in rules for p in r.ports)}
    return sum(rule_domains(r) for r in rules) + len(denied) * (1 + len(ports))


def session_domains(rules: tuple[EgressRule, ...], policy: Policy) -> int:
    """The domains of the routes of a session with `rules` under `policy`."""
    return route_domains(policy.effective(rules), policy.deny)


def route_size_problem(rules: tuple[EgressRule, ...], policy: Policy, limits: RuleLimits) -> str:
    """Why a session with `rules` under `policy` would have routes too large, or "" if they fit."""
    if len(rules) > limits.max_rules:
        return f"at most {limits.max_rules} rules are allowed (max_rules), got {len(rules)}"
    count = session_domains(rules, policy)
    if count <= limits.max_route_domains:
        return ""
    return (
        f"these rules expand into {count} route domains (each host or CIDR address times its ports, plus the "
        f"policy's {len(policy.deny)} denied names times the ports in use); at most {limits.max_route_domains} "
        "are allowed (max_route_domains): use fewer ports or smaller CIDR ranges"
    )
