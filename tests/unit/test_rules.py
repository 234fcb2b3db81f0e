from __future__ import annotations

import pytest

from control_plane.domain.rules import EgressRule, find_rule, parse_rule, parse_rules, split_authority
from control_plane.errors import InvalidArgument


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("PyPI.org", "pypi.org"),
        ("pypi.org.", "pypi.org"),
        ("*.GitHub.com", "*.github.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_hosts_are_normalized(host: str, expected: str) -> None:
    assert parse_rule(host).host == expected


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("", "must not be empty"),
        ("*.*", "'*' is allowed only"),
        ("*", "too broad"),
        ("*.com", "too broad"),
        ("a.*.com", "'*' is allowed only"),
        ("com", "not a fully qualified"),
        ("bad host.test", "not a valid host name"),
        ("-bad.test", "not a valid host name"),
        ("x" * 64 + ".test", "not a valid host name"),
    ],
)
def test_bad_hosts_are_rejected_with_reason(host: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rule(host, field="egress[3]")
    assert err.value.field == "egress[3].host"
    assert message in err.value.message


def test_broad_wildcards_need_config() -> None:
    assert parse_rule("*.com", allow_broad=True).host == "*.com"


@pytest.mark.parametrize("port", [0, 70000, -1])
def test_ports_out_of_range(port: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rule("ok.test", [port])
    assert err.value.field == "egress.ports"


def test_defaults_and_methods() -> None:
    rule = parse_rule("ok.test", [], ["get", "HEAD"])
    assert rule == EgressRule("ok.test", (80, 443), ("GET", "HEAD"))
    with pytest.raises(InvalidArgument, match="FETCH"):
        parse_rule("ok.test", [], ["fetch"])


def test_parse_rules_names_the_index_and_merges_duplicates() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rules([{"host": "ok.test"}, {"host": "ok.test", "ports": "80"}])
    assert err.value.field == "egress[1].ports"
    rules = parse_rules([{"host": "a.test", "ports": [1]}, {"host": "A.test", "ports": [2]}])
    assert rules == (EgressRule("a.test", (2,)),)


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("api.github.com", 443, "*.github.com"),
        ("github.com", 443, None),  # wildcards match subdomains only
        ("a.b.github.com", 443, "*.github.com"),
        ("evilgithub.com", 443, None),
        ("pypi.org", 80, "pypi.org"),
        ("pypi.org", 8080, None),
        ("exact.github.com", 443, "exact.github.com"),  # exact beats wildcard
    ],
)
def test_find_rule(host: str, port: int, allowed: str | None) -> None:
    rules = (EgressRule("*.github.com", (443,)), EgressRule("pypi.org"), EgressRule("exact.github.com", (443,)))
    found = find_rule(rules, host, port)
    assert (found.host if found else None) == allowed


@pytest.mark.parametrize(
    ("authority", "default", "expected"),
    [
        ("Example.COM:443", 80, ("example.com", 443)),
        ("example.com", 80, ("example.com", 80)),
        ("[::1]:8443", 80, ("::1", 8443)),
        ("example.com:http", 80, None),
        ("example.com:0", 80, None),
        (":80", 80, None),
    ],
)
def test_split_authority(authority: str, default: int, expected: tuple[str, int] | None) -> None:
    assert split_authority(authority, default) == expected


def test_ip_and_cidr_rules() -> None:
    from control_plane.xds.builders.route import domains_for

    assert parse_rule("10.1.2.0/30", [443]).host == "10.1.2.0/30"
    assert parse_rule("10.1.2.3/30").host == "10.1.2.0/30"  # normalized to the network
    assert parse_rule("[2001:DB8::1]").host == "2001:db8::1"
    rule = parse_rule("10.1.2.0/31", [80, 8080])
    assert domains_for(rule) == ["10.1.2.0", "10.1.2.0:80", "10.1.2.0:8080", "10.1.2.1", "10.1.2.1:80", "10.1.2.1:8080"]
    assert domains_for(parse_rule("2001:db8::1", [443])) == ["[2001:db8::1]:443"]
    assert rule.allows("10.1.2.1", 8080) and not rule.allows("10.1.2.2", 8080) and not rule.allows("a.test", 80)
    with pytest.raises(InvalidArgument, match="at most 256"):
        parse_rule("10.0.0.0/16")
    with pytest.raises(InvalidArgument, match="not a valid CIDR"):
        parse_rule("10.0.0.0/33")
