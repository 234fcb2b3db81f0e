"""/openapi.json is generated from the routes and the models that validate them: they agree by construction,
and what the published host patterns admit is what the domain accepts."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from control_plane.admin.console import is_console_path
from control_plane.admin.hosts import DENY_HOST_PATTERN, rule_host_pattern
from control_plane.admin.http import field_path, invalid
from control_plane.admin.models import request_models
from control_plane.admin.routes import AdminDeps, AdminRoutes, admin_operations, build_admin_app
from control_plane.admin.spec import openapi
from control_plane.domain.policy import parse_policy
from control_plane.domain.rules import DEFAULT_LIMITS, RuleLimits, normalize_host

SMALL = RuleLimits(max_rules=8, max_ports_per_rule=4, max_cidr_addresses=16)
EXAMPLES = settings(max_examples=60, derandomize=True, suppress_health_check=[HealthCheck.too_slow], deadline=None)


def _spec() -> dict[str, Any]:
    deps: Any = AdminDeps(None, None, None, None, None, "n", None, None, None)  # type: ignore[arg-type]
    return openapi(admin_operations(AdminRoutes(deps)))


def test_openapi_matches_routes() -> None:
    deps: Any = AdminDeps(None, None, None, None, None, "n", None, None, None)  # type: ignore[arg-type]
    app = build_admin_app(deps, "token")
    served = {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD" and not is_console_path(route.resource.canonical)
    }
    documented = {(path, method) for path, ops in _spec()["paths"].items() for method in ops}
    assert served == documented


def test_open_routes_are_declared_without_auth_and_v1_routes_with_it() -> None:
    paths = _spec()["paths"]
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert paths[path]["get"]["security"] == [] and "401" not in paths[path]["get"]["responses"]
    for path, ops in paths.items():
        if path.startswith("/v1/"):
            assert all("security" not in op and "401" in op["responses"] for op in ops.values()), path


def test_a_policy_write_answers_what_its_schema_allows() -> None:
    spec = _spec()
    put = spec["paths"]["/v1/policy"]["put"]
    assert put["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Policy")
    assert "applied" in spec["components"]["schemas"]["Policy"]["properties"]


def test_decision_limit_is_bounded_in_the_spec() -> None:
    params = {p["name"]: p["schema"] for p in _spec()["paths"]["/v1/decisions"]["get"]["parameters"]}
    assert (params["limit"]["type"], params["limit"]["minimum"], params["limit"]["maximum"]) == ("integer", 1, 10000)
    assert params["verdict"]["enum"] == ["allow", "deny", "would_deny", "error", "event"]


def test_the_spec_states_the_configured_limits() -> None:
    schemas = request_models(SMALL).rules.model_json_schema()
    rule = schemas["$defs"]["Rule"]["properties"]
    assert schemas["properties"]["egress"]["maxItems"] == 8 and rule["ports"]["maxItems"] == 4
    assert rule["host"]["minLength"] == 1 and rule["host"]["pattern"] == rule_host_pattern(16)


@pytest.mark.parametrize("host", ["", " a.test", "A.test", "a.test.", "*.com", "1.2.3.4/27", "127.1", "a", "*"])
def test_hosts_outside_the_pattern_are_refused_by_the_model(host: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request_models(SMALL).rule.model_validate({"host": host})
    assert invalid(caught.value).field == "host"


@EXAMPLES
@given(st.from_regex(rule_host_pattern(16), fullmatch=True).filter(lambda h: len(h) <= 253))
def test_every_rule_host_the_pattern_admits_is_accepted_as_it_is(host: str) -> None:
    canonical = normalize_host(host, allow_broad=True, limits=SMALL)
    assert canonical == (str(ipaddress.ip_network(host, strict=False)) if "/" in host else _ip_or(host))


@EXAMPLES
@given(st.from_regex(DENY_HOST_PATTERN, fullmatch=True).filter(lambda h: len(h) <= 253))
def test_every_deny_host_the_pattern_admits_is_accepted_as_it_is(host: str) -> None:
    assert parse_policy({"deny": [host]}).deny == (host,)


def _ip_or(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deny": ["ok.test", 5]}, "deny[1]"),
        ({"deny": ["ok.test", "bad host"]}, "deny[1]"),
        ({"default_egress": [{"host": "a.test"}, {"host": "b.test", "ports": [0]}]}, "default_egress[1].ports[0]"),
        ({"default_egress": [{"host": "a.test", "port": 1}]}, "default_egress[0].port"),
        ({"x": 1}, "x"),
    ],
)
def test_policy_errors_name_the_entry(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request_models(DEFAULT_LIMITS).policy.model_validate(body)
    assert invalid(caught.value).field == field


def test_field_path() -> None:
    assert field_path(("egress", 1, "host")) == "egress[1].host" and field_path(()) == ""
