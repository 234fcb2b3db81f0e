"""What on_unlisted ASK and the sandbox API change in a session's Envoy config, checked by Envoy's own types."""

from __future__ import annotations

from typing import Any

import pytest
from envoy_data_plane.envoy.config.listener.v3 import Listener
from envoy_data_plane.envoy.config.route.v3 import RouteConfiguration

from control_plane.domain.policy import parse_policy
from control_plane.domain.rules import SANDBOX_API_HOST, EgressRule, parse_rule
from control_plane.errors import InvalidArgument
from control_plane.xds.builders import SANDBOX_API_CLUSTER, EgressSettings
from control_plane.xds.builders.listener import EXT_AUTHZ_FILTER, render_session_listener
from control_plane.xds.builders.route import SESSION_HEADER, render_session_routes
from control_plane.xds.types import register_message_types

RULES = (EgressRule("allowed.test", (443,)),)


@pytest.fixture(autouse=True)
def _types() -> None:
    register_message_types()  # Envoy's typed_config types, for from_dict


def fallback(config: dict[str, Any]) -> dict[str, Any]:
    (vhost,) = [v for v in config["virtual_hosts"] if v["domains"] == ["*"]]
    return vhost


def test_an_ask_sessions_catch_all_forwards_only_through_ext_authz() -> None:
    config = render_session_routes("s-1", RULES, ("evil.test",), ask=True)
    RouteConfiguration.from_dict(config)
    routes = fallback(config)["routes"]
    policy, asked = routes[:2], routes[2:]
    assert [r["name"] for r in policy] == ["deny:destination-denied-by-policy"] * 2  # the deny list still holds
    assert [r["name"] for r in asked] == ["ask:host-not-allowed"] * 2
    for route in asked:
        check = route["typed_per_filter_config"][EXT_AUTHZ_FILTER]["check_settings"]["context_extensions"]
        assert check == {"session_id": "s-1", "unlisted": "ask"}
    assert "upgrade_configs" in asked[0]["route"]  # CONNECT is held too


@pytest.mark.parametrize(("ask", "report_only"), [(False, False), (True, True)])
def test_deny_sessions_and_report_mode_never_ask(ask: bool, report_only: bool) -> None:
    names = {
        r["name"].split(":")[0]
        for r in fallback(render_session_routes("s-1", RULES, (), report_only, ask=ask))["routes"]
    }
    assert names == {"would-deny" if report_only else "deny"}


def test_the_sandbox_api_names_the_session_over_what_the_sandbox_sent() -> None:
    config = render_session_routes("s-1", RULES, sandbox_api=True)
    RouteConfiguration.from_dict(config)
    (vhost,) = [v for v in config["virtual_hosts"] if SANDBOX_API_HOST in v["domains"]]
    connect, api = vhost["routes"]
    assert connect["direct_response"]["status"] == 403
    assert api["route"]["cluster"] == SANDBOX_API_CLUSTER
    (header,) = api["request_headers_to_add"]
    assert header == {
        "header": {"key": SESSION_HEADER, "value": "s-1"},
        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
    }
    # Not served (a TCP control channel): refused, and never held on an approval or looked up in DNS.
    (unserved,) = [
        v for v in render_session_routes("s-1", RULES, ask=True)["virtual_hosts"] if SANDBOX_API_HOST in v["domains"]
    ]
    assert [r["name"] for r in unserved["routes"]] == ["deny:host-not-allowed"] * 2


@pytest.mark.parametrize(("holds", "timeout"), [(False, "2s"), (True, "45s")])
def test_a_held_check_may_last_the_approval_timeout(holds: bool, timeout: str) -> None:
    config = render_session_listener("s-1", "/run/s-1/proxy.sock", {"keys": []}, EgressSettings(), holds)
    Listener.from_dict(config)
    manager = config["filter_chains"][0]["filters"][1]["typed_config"]
    (authz,) = [f for f in manager["http_filters"] if f["name"] == EXT_AUTHZ_FILTER]
    assert authz["typed_config"]["grpc_service"]["timeout"] == timeout


def test_no_rule_or_deny_list_may_name_the_sandbox_api() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_rule("Sandgate.Internal.", field="rule")
    assert raised.value.field == "rule.host"
    with pytest.raises(InvalidArgument) as raised:
        parse_policy({"default_egress": [], "deny": [SANDBOX_API_HOST]})
    assert raised.value.field == "deny[0]"
