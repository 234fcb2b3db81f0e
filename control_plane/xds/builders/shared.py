"""Filter configs every session's listener shares, served once over ECDS.

Envoy builds a filter config per listener that embeds it; the Lua filter alone costs about 200 KiB per
listener that way (a LuaJIT state per thread). Discovered by name, one config serves every session.
"""

from __future__ import annotations

from typing import Any

from control_plane.xds.builders import TYPE, EgressSettings
from control_plane.xds.builders.lua import UNWRAP_TOKEN

UNWRAP_TOKEN_FILTER = "sandgate.unwrap-token"
DESTINATIONS_FILTER = "sandgate.forbidden-destinations"
LUA_TYPE = TYPE + "envoy.extensions.filters.http.lua.v3.Lua"
RBAC_TYPE = TYPE + "envoy.extensions.filters.http.rbac.v3.RBAC"
FORBIDDEN_POLICY = "forbidden-destinations"


def render_unwrap_token_filter() -> dict[str, Any]:
    return {
        "name": UNWRAP_TOKEN_FILTER,
        "typed_config": {"@type": LUA_TYPE, "default_source_code": {"inline_string": UNWRAP_TOKEN}},
    }


def render_destinations_filter(settings: EgressSettings) -> dict[str, Any]:
    """Deny a resolved upstream address in a forbidden range: DNS rebinding cannot get around it.

    It runs after the dynamic forward proxy has resolved (and saved) the address and before the router
    connects, for plain HTTP and for CONNECT alike.
    """
    permission: dict[str, Any] = _upstream_in(settings.forbidden_cidrs or ("255.255.255.255/32",))
    if settings.forbidden_exceptions:
        permission = {"and_rules": {"rules": [permission, {"not_rule": _upstream_in(settings.forbidden_exceptions)}]}}
    return {
        "name": DESTINATIONS_FILTER,
        "typed_config": {
            "@type": RBAC_TYPE,
            "rules": {
                "action": "DENY",
                "policies": {FORBIDDEN_POLICY: {"permissions": [permission], "principals": [{"any": True}]}},
            },
        },
    }


def _cidr(cidr: str) -> dict[str, Any]:
    address, _, length = cidr.partition("/")
    return {"address_prefix": address, "prefix_len": int(length)}


def _upstream_in(cidrs: tuple[str, ...]) -> dict[str, Any]:
    matcher = TYPE + "envoy.extensions.rbac.matchers.upstream_ip_port.v3.UpstreamIpPortMatcher"
    rules = [
        {
            "matcher": {
                "name": "envoy.rbac.matchers.upstream_ip_port",
                "typed_config": {"@type": matcher, "upstream_ip": _cidr(c)},
            }
        }
        for c in cidrs
    ]
    return {"or_rules": {"rules": rules}}
