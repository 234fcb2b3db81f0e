"""The global egress policy: rules every new session starts with, and destinations no session may reach."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from control_plane.domain.hostnames import canonical_host, is_ip, is_numeric_name
from control_plane.domain.rules import (
    DEFAULT_LIMITS,
    SANDBOX_API_HOST,
    EgressRule,
    RuleLimits,
    check_rule_count,
    merge_rules,
    parse_rules,
)
from control_plane.errors import InvalidArgument

POLICY_FIELDS = frozenset({"default_egress", "deny"})


@dataclass(frozen=True)
class Policy:
    default_egress: tuple[EgressRule, ...] = ()
    deny: tuple[str, ...] = ()  # exact hosts or `*.` wildcards

    def to_dict(self) -> dict[str, object]:
        return {"default_egress": [r.to_dict() for r in self.default_egress], "deny": list(self.deny)}

    def is_denied(self, host: str) -> bool:
        return any(_host_matches(pattern, host) for pattern in self.deny)

    def effective(self, rules: tuple[EgressRule, ...]) -> tuple[EgressRule, ...]:
        """A session's rules less those whose host the policy always denies."""
        return tuple(r for r in rules if not self.is_denied(r.host))


def _host_matches(pattern: str, host: str) -> bool:
    if host == pattern:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        # A denied wildcard also covers any narrower wildcard or name below it.
        return host.endswith(suffix) and host != suffix[1:]
    return False


def parse_policy(
    raw: Mapping[str, object], *, allow_broad: bool = False, limits: RuleLimits = DEFAULT_LIMITS
) -> Policy:
    """Validate a policy document; errors name the offending field. Its default rules and its deny list
    each hold at most `limits.max_rules` entries, and every rule meets `limits` as a session's would."""
    unknown = sorted(set(raw) - POLICY_FIELDS)
    if unknown:
        raise InvalidArgument(f"unknown field {unknown[0]!r}; expected {sorted(POLICY_FIELDS)}", field=unknown[0])
    egress = raw.get("default_egress") or []
    deny = raw.get("deny") or []
    if not isinstance(egress, list) or not all(isinstance(r, dict) for r in egress):
        raise InvalidArgument("must be a list of rules", field="default_egress")
    if not isinstance(deny, list) or not all(isinstance(h, str) for h in deny):
        raise InvalidArgument("must be a list of host names", field="deny")
    check_rule_count(len(deny), "deny", limits)
    hosts = sorted({_deny_host(h, f"deny[{i}]") for i, h in enumerate(deny)})
    return Policy(parse_rules(egress, "default_egress", allow_broad=allow_broad, limits=limits), tuple(hosts))


def _deny_host(raw: str, field: str) -> str:
    host = canonical_host(raw, field)
    if "/" in host or is_ip(host) or is_numeric_name(host):
        raise InvalidArgument(
            f"{raw!r} is an address: forbid addresses with forbidden_cidrs in the configuration", field=field
        )
    if host == SANDBOX_API_HOST:
        raise InvalidArgument(f"{host} is Sandgate's own name inside a sandbox; it cannot be denied", field=field)
    return host


def with_defaults(policy: Policy, requested: tuple[EgressRule, ...]) -> tuple[EgressRule, ...]:
    """A new session's rules: the policy's defaults, overridden per host by what was asked for."""
    return merge_rules([*policy.default_egress, *requested])
