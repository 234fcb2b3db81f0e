"""What the builders write into Envoy's config and what the audit reads back agree with the contract: every
reason a route, a local reply or ext_authz can carry is in the closed set, and route names parse back."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane import envoy_contract as c
from control_plane.audit.entries import LoggedRequest, verdict
from control_plane.domain.rules import EgressRule
from control_plane.xds.builders.limits import TenantLimits, limit_refusals
from control_plane.xds.builders.local_reply import local_reply_mappers
from control_plane.xds.builders.route import render_ended_routes, render_session_routes

RULES = (EgressRule("ok.test", (80, 443)), EgressRule("get.test", (80,), ("GET",)))


def routes_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for vhost in config["virtual_hosts"] for r in vhost["routes"]]


def header_values(items: list[dict[str, Any]], key: str) -> set[str]:
    return {h["header"]["value"] for item in items for h in item.get(key, ()) if h["header"]["key"].startswith("x-")}


@pytest.mark.parametrize("report_only", [False, True])
def test_every_route_name_parses_back_to_its_verdict_and_a_known_reason(report_only: bool) -> None:
    config = render_session_routes("s-1", RULES, ("evil.test",), report_only=report_only)
    for route in [*routes_of(config), *routes_of(render_ended_routes("s-1"))]:
        name: str = route["name"]
        details = "direct_response" if "direct_response" in route else "via_upstream"
        entry = LoggedRequest("/s/s-1/proxy.sock", "GET", "ok.test", 200, details, name, "", 0, 0, 0, 0)
        got, reason = verdict(entry)
        if name.startswith(c.ALLOW_ROUTE):
            assert (got, reason, name) == (c.ALLOW, c.ALLOWED, c.allow_route(name.removeprefix(c.ALLOW_ROUTE)))
        else:
            assert got in (c.DENY, c.WOULD_DENY) and reason in c.REASONS
            assert name == c.deny_route(reason, report_only=got == c.WOULD_DENY)


def test_every_header_envoy_answers_with_carries_a_known_reason() -> None:
    mappers = local_reply_mappers(limit_refusals(TenantLimits()))
    config = render_session_routes("s-1", RULES, ("evil.test",), report_only=False)
    reported = header_values(mappers, "headers_to_add") | header_values(routes_of(config), "response_headers_to_add")
    assert reported and reported <= c.REASONS


def test_session_names_and_sockets() -> None:
    assert c.session_resource_name("s-1") == c.SESSION_PREFIX + "s-1"
    assert c.session_of(f"/var/lib/sandgate/sessions/s-1/{c.SOCKET_NAME}") == "s-1"
