"""A session's listener: a unix socket whose HTTP filter chain verifies the token on every request."""

from __future__ import annotations

import json
from typing import Any

from control_plane.domain.tokens import ISSUER
from control_plane.xds.builders import (
    CONTROL_PLANE_CLUSTER,
    TYPE,
    EgressSettings,
    dns_cache_config,
    session_resource_name,
)
from control_plane.xds.builders.lua import UNWRAP_TOKEN

TOKEN_HEADER = "x-sandgate-token"
JWT_PROVIDER = "session"
JWT_METADATA_KEY = "jwt_payload"
EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
FORBIDDEN_POLICY = "forbidden-destinations"
FORBIDDEN_BODY = (
    "Sandgate denied this request (destination-ip-forbidden): the host resolved to an address no sandbox may "
    "reach (loopback, private, link-local, metadata or this host's own). An operator can change the forbidden "
    "ranges in the control plane's configuration.\n"
)
AUTH_REQUIRED_BODY = (
    "Sandgate: proxy authentication required. Requests must carry this session's token as proxy "
    "credentials (HTTP_PROXY=http://sandgate:TOKEN@127.0.0.1:3128); it is in /run/sandgate/token.\n"
)


def render_session_listener(
    session_id: str, socket_path: str, jwks: dict[str, Any], settings: EgressSettings
) -> dict[str, Any]:
    name = session_resource_name(session_id)
    return {
        "name": name,
        "address": {"pipe": {"path": socket_path, "mode": 0o666}},
        "per_connection_buffer_limit_bytes": 1 << 20,
        "filter_chains": [{"filters": [_connection_manager(session_id, jwks, settings)]}],
    }


def _connection_manager(session_id: str, jwks: dict[str, Any], settings: EgressSettings) -> dict[str, Any]:
    name = session_resource_name(session_id)
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "session",
            "rds": {"route_config_name": name, "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "http_protocol_options": {"allow_absolute_url": True},
            "upgrade_configs": [{"upgrade_type": "CONNECT"}],
            "common_http_protocol_options": {"idle_timeout": f"{settings.idle_timeout_s}s"},
            "max_request_headers_kb": 60,
            "http_filters": [
                _lua_filter(),
                _jwt_filter(session_id, jwks),
                _ext_authz_filter(),
                _forward_proxy_filter(settings),
                _destination_filter(settings),
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.router.v3.Router"},
                },
            ],
            "access_log": [_decision_log()],
            # A tunnel's decision is logged when it opens, not only when it closes.
            "access_log_options": {"flush_log_on_tunnel_successfully_established": True},
            "local_reply_config": {"mappers": [_auth_failure_mapper(), _forbidden_destination_mapper()]},
        },
    }


def _lua_filter() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": UNWRAP_TOKEN},
        },
    }


def _jwt_filter(session_id: str, jwks: dict[str, Any]) -> dict[str, Any]:
    provider = {
        "issuer": ISSUER,
        "audiences": [session_id],
        "local_jwks": {"inline_string": json.dumps(jwks, sort_keys=True)},
        "from_headers": [{"name": TOKEN_HEADER}],
        "forward": False,
        "require_expiration": True,
        "payload_in_metadata": JWT_METADATA_KEY,
        "jwt_cache_config": {"jwt_cache_size": 16},
    }
    required = {"provider_name": JWT_PROVIDER}
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {JWT_PROVIDER: provider},
            "rules": [
                {"match": {"connect_matcher": {}}, "requires": required},
                {"match": {"prefix": "/"}, "requires": required},
            ],
        },
    }


def _ext_authz_filter() -> dict[str, Any]:
    return {
        "name": EXT_AUTHZ_FILTER,
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpc_service": {"envoy_grpc": {"cluster_name": CONTROL_PLANE_CLUSTER}, "timeout": "2s"},
            "transport_api_version": "V3",
            "failure_mode_allow": False,
            "metadata_context_namespaces": ["envoy.filters.http.jwt_authn"],
        },
    }


def _forward_proxy_filter(settings: EgressSettings) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.dynamic_forward_proxy",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
            "dns_cache_config": dns_cache_config(settings),
            "save_upstream_address": True,
        },
    }


def _decision_log() -> dict[str, Any]:
    """One config for every listener, so Envoy shares one gRPC stream for all sessions' decisions."""
    return {
        "name": "envoy.access_loggers.http_grpc",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            "common_config": {
                "log_name": "sandgate-decisions",
                "grpc_service": {"envoy_grpc": {"cluster_name": CONTROL_PLANE_CLUSTER}},
                "transport_api_version": "V3",
                "buffer_flush_interval": "0.2s",
            },
            "additional_response_headers_to_log": ["x-sandgate-deny-reason"],
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


def _destination_filter(settings: EgressSettings) -> dict[str, Any]:
    """Deny a resolved upstream address in a forbidden range: DNS rebinding cannot get around it.

    It runs after the dynamic forward proxy has resolved (and saved) the address and before the router
    connects, for plain HTTP and for CONNECT alike.
    """
    permission: dict[str, Any] = _upstream_in(settings.forbidden_cidrs or ("255.255.255.255/32",))
    if settings.forbidden_exceptions:
        permission = {"and_rules": {"rules": [permission, {"not_rule": _upstream_in(settings.forbidden_exceptions)}]}}
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {
                "action": "DENY",
                "policies": {FORBIDDEN_POLICY: {"permissions": [permission], "principals": [{"any": True}]}},
            },
        },
    }


def _forbidden_destination_mapper() -> dict[str, Any]:
    return {
        "filter": _cel("response.code_details.startsWith('rbac_access_denied')"),
        "headers_to_add": [_header("x-sandgate-deny-reason", "destination-ip-forbidden")],
        "body": {"inline_string": FORBIDDEN_BODY},
    }


def _cel(expression: str) -> dict[str, Any]:
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": {
                "@type": TYPE + "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                "expression": expression,
            },
        }
    }


def _header(key: str, value: str) -> dict[str, Any]:
    return {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _auth_failure_mapper() -> dict[str, Any]:
    """jwt_authn answers 401/403 for a missing or bad token; a proxy says 407."""
    return {
        "filter": _cel("response.code_details.startsWith('jwt_authn_access_denied')"),
        "status_code": 407,
        "headers_to_add": [
            _header("proxy-authenticate", 'Basic realm="sandgate"'),
            _header("x-sandgate-deny-reason", "token-invalid"),
        ],
        "body": {"inline_string": AUTH_REQUIRED_BODY},
    }
