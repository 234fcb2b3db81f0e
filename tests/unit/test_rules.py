from __future__ import annotations

import pytest

from control_plane.domain.rules import EgressRule, RuleLimits, find_rule, parse_rule, parse_rules, split_authority
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
        ("a\n.test", "not a valid host name"),
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
        ("[2001:DB8::1]", 443, ("2001:db8::1", 443)),
        ("[allowed.test]:80", 80, None),  # brackets hold an IPv6 address: Envoy matched no rule to this
        ("[127.0.0.1]:80", 80, None),
        ("[::1]evil.test", 80, None),
        ("[::1", 80, None),
        ("Example.com.:80", 80, ("example.com", 80)),
        ("example.com..", 80, None),
        ("example..com", 80, None),
        (".example.com", 80, None),
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


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("*.co.uk", "wildcard over the public suffix 'co.uk'"),
        ("*.github.io", "wildcard over the public suffix 'github.io'"),
        ("*.s3.amazonaws.com", "wildcard over the public suffix 's3.amazonaws.com'"),
        ("*.com", "needs at least two labels"),
        ("*.test", "needs at least two labels"),
        ("*.localhost", "needs at least two labels"),
        ("co.uk", "is a public suffix"),
        ("github.io", "is a public suffix"),
        ("com", "not a fully qualified"),
    ],
)
def test_public_suffixes_and_wildcards_over_them_are_broad(host: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rule(host, field="egress[3]")
    assert err.value.field == "egress[3].host"
    assert "too broad" in err.value.message and message in err.value.message
    assert parse_rule(host, allow_broad=True).host == host  # the operator's setting allows them


@pytest.mark.parametrize(
    "host",
    ["*.example.co.uk", "example.co.uk", "user.github.io", "*.user.github.io", "*.wild.test", "localhost",
     "*.amazonaws.com", "bucket.s3.amazonaws.com", "*.githubusercontent.co.uk", "pypi.org"],
)  # fmt: skip
def test_names_below_a_public_suffix_are_not_broad(host: str) -> None:
    assert parse_rule(host).host == host


@pytest.mark.parametrize(
    ("host", "read_as"),
    [
        ("127.1", "the address 127.0.0.1"),
        ("0x7f.1", "the address 127.0.0.1"),
        ("198.18.20226", "the address 198.18.79.2"),
        ("2130706433", "the address 127.0.0.1"),
        ("017700000001", "the address 127.0.0.1"),
        ("0x7f000001", "the address 127.0.0.1"),
        ("0177.0.0.1", "the address 127.0.0.1"),
        ("10.0.0.010", "the address 10.0.0.8"),
        ("*.127.1", "the address 127.0.0.1"),
        ("example.0x10", "an IPv4 address"),
        ("a.b.c.d.1", "an IPv4 address"),
        ("1.2.3.4.5", "an IPv4 address"),
        ("256.1", "an IPv4 address"),
    ],
)
def test_numeric_names_are_refused_whatever_the_settings(host: str, read_as: str) -> None:
    for allow_broad in (False, True):
        with pytest.raises(InvalidArgument) as err:
            parse_rule(host, field="egress[0]", allow_broad=allow_broad)
        assert err.value.field == "egress[0].host"
        assert "ends in a number" in err.value.message and read_as in err.value.message


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("123.example.com", "123.example.com"),
        ("0x7f.example.com", "0x7f.example.com"),
        ("1password.com", "1password.com"),
        ("example.x1", "example.x1"),
        ("127.0.0.1", "127.0.0.1"),  # a real address is an IP rule
        ("198.18.0.0/24", "198.18.0.0/24"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_names_with_numbers_that_are_not_numeric_and_real_ip_rules(host: str, expected: str) -> None:
    assert parse_rule(host).host == expected


SMALL = RuleLimits(max_rules=3, max_ports_per_rule=4, max_cidr_addresses=16, max_route_domains=100)


@pytest.mark.parametrize(
    ("raw", "limits", "field", "reason"),
    [
        ([{"host": "a.test", "ports": list(range(1, 66))}], RuleLimits(), "egress[0].ports", "max_ports_per_rule"),
        ([{"host": "a.test"}, {"host": "203.0.113.0/24", "ports": list(range(1000, 13000))}], RuleLimits(),
         "egress[1].ports", "at most 64 ports"),
        ([{"host": "203.0.113.0/23"}], RuleLimits(), "egress[0].host", "holds 512 addresses"),
        ([{"host": f"h{i}.test"} for i in range(257)], RuleLimits(), "egress", "at most 256 rules"),
        ([{"host": f"h{i}.test"} for i in range(4)], SMALL, "egress", "max_rules"),
        ([{"host": "a.test", "ports": [1, 2, 3, 4, 5]}], SMALL, "egress[0].ports", "at most 4 ports"),
        ([{"host": "10.0.0.0/27"}], SMALL, "egress[0].host", "max_cidr_addresses"),
    ],
)  # fmt: skip
def test_rule_limits_name_the_field(raw: list[dict[str, object]], limits: RuleLimits, field: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_rules(raw, limits=limits)
    assert err.value.field == field
    assert reason in err.value.message


def test_rules_at_the_limits_are_accepted() -> None:
    assert len(parse_rules([{"host": f"h{i}.test"} for i in range(256)])) == 256
    assert parse_rules([{"host": "a.test", "ports": list(range(1, 65))}])[0].ports == tuple(range(1, 65))
    assert parse_rules([{"host": "10.0.0.0/28"}], limits=SMALL)[0].host_count == 16
