"""The route-domain count that limits a session equals what the route builder renders."""

from __future__ import annotations

import pytest

from control_plane.domain.expansion import route_domains, route_size_problem, session_domains
from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule, RuleLimits, parse_rule
from control_plane.xds.builders.route import render_session_routes

FIXED = ("deny", "sandgate-internal")  # the same in every session, whatever its rules: not counted
CASES: list[tuple[tuple[EgressRule, ...], tuple[str, ...]]] = [
    ((), ()),
    ((parse_rule("a.test"),), ()),  # 80 and 443: a.test, a.test:80, a.test:443
    ((parse_rule("a.test", [443, 8443]),), ()),
    ((parse_rule("*.wild.test", [80]), parse_rule("b.test", [80, 81])), ()),
    ((parse_rule("10.1.2.0/28", [80, 8080]),), ()),
    ((parse_rule("2001:db8::/124", [443]),), ()),
    ((parse_rule("a.test", [9000, 9001, 9002]),), ("evil.test", "*.bad.test")),
    ((), ("evil.test",)),
]


@pytest.mark.parametrize(("rules", "denied"), CASES)
def test_count_equals_the_rendered_domains(rules: tuple[EgressRule, ...], denied: tuple[str, ...]) -> None:
    config = render_session_routes("s-0000000000000001", rules, denied)
    rendered = sum(len(vh["domains"]) for vh in config["virtual_hosts"] if vh["name"] not in FIXED)
    assert route_domains(rules, denied) == rendered


def test_a_denied_rule_is_not_counted_and_the_deny_list_is() -> None:
    rules = (parse_rule("a.test"), parse_rule("evil.test", [8000]))
    policy = Policy(deny=("evil.test",))
    # a.test: 3; evil.test's rule is dropped; the denied name: bare + 80 + 443 (only a.test's ports remain)
    assert session_domains(rules, policy) == 3 + 3


def test_the_reported_attack_is_3072000_domains_and_refused() -> None:
    rule = EgressRule("203.0.113.0/24", tuple(range(1000, 13000)))  # a /24 with 12,000 ports
    assert route_domains((rule,), ()) == 3_072_000
    problem = route_size_problem((rule,), Policy(), RuleLimits())
    assert "3072000 route domains" in problem and "max_route_domains" in problem


@pytest.mark.parametrize(
    ("rules", "deny", "reason"),
    [
        ((parse_rule("203.0.113.0/24", list(range(1000, 1032))),), (), ""),  # 8,192 exactly: fits
        ((parse_rule("203.0.113.0/24", list(range(1000, 1033))),), (), "8448 route domains"),
        (tuple(parse_rule(f"h{i}.test", list(range(1, 64))) for i in range(131)), (), "8253 route domains"),
        ((parse_rule("a.test", list(range(1000, 1064))),), tuple(f"d{i}.test" for i in range(126)), "8506"),
        (tuple(parse_rule(f"h{i}.test") for i in range(257)), (), "at most 256 rules"),
    ],
)
def test_route_size_problem(rules: tuple[EgressRule, ...], deny: tuple[str, ...], reason: str) -> None:
    problem = route_size_problem(rules, Policy(deny=deny), RuleLimits())
    assert (reason in problem) if reason else problem == ""
