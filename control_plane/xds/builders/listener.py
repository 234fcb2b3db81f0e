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
from control_plane.xds.builders.limits import TenantLimits, connection_limit_filter, limit_refusals, rate_limit_filter
from control_plane.xds.builders.shared import (
    ACCESS_LOG_FLUSH_SECONDS,
    DESTINATIONS_FILTER,
    LUA_TYPE,
    RBAC_TYPE,
    UNWRAP_TOKEN_FILTER,
)

TOKEN_HEADER = "x-sandgate-token"
DENY_HEADER = "x-sandgate-deny-reason"
PERIODIC_LOG_SECONDS = 10
JWT_PROVIDER = "session"
JWT_METADATA_KEY = "jwt_payload"
EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
FORBIDDEN_BODY = (
    "Sandgate denied this request (destination-ip-forbidden): the host resolved to an address no sandbox may "
    "reach (loopback, private, link-local, metadata or this host's own). An operator can change the forbidden "
    "ranges in the control plane's configuration.\n"
)
REQUEST_HEADERS_TIMEOUT = "10s"  # a request's headers arrive at once from any real client
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
        # One set of listener stats for all sessions, not one per socket path (about 13 KiB a session);
        # what each session did is in the decision log.
        "stat_prefix": "sessions",
        # Bounds what Envoy buffers for each connection (the egress cluster has the same bound upstream).
        "per_connection_buffer_limit_bytes": settings.limits.buffer_bytes,
        "filter_chains": [
            {"filters": [connection_limit_filter(settings.limits), _connection_manager(session_id, jwks, settings)]}
        ],
    }


def _connection_manager(session_id: str, jwks: dict[str, Any], settings: EgressSettings) -> dict[str, Any]:
    name = session_resource_name(session_id)
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "session",
            "rds": {"route_config_name": name, "config_source": {"ads": {}, "resource_api_version": "V3"}},
            # Proxy clients speak HTTP/1.1 to their proxy; HTTP/2 (multiplexed floods for the cost of one
            # connection) is refused here and still works inside a CONNECT tunnel, which Envoy does not read.
            "codec_type": "HTTP1",
            "http_protocol_options": {"allow_absolute_url": True},
            "request_headers_timeout": REQUEST_HEADERS_TIMEOUT,
            "upgrade_configs": [{"upgrade_type": "CONNECT"}],
            "common_http_protocol_options": {"idle_timeout": f"{settings.idle_timeout_s}s"},
            "max_request_headers_kb": 60,
            "http_filters": [
                rate_limit_filter(settings.limits),  # first: a flood costs neither a token check nor ext_authz
                _discovered(UNWRAP_TOKEN_FILTER, LUA_TYPE),
                _jwt_filter(session_id, jwks),
                _ext_authz_filter(),
                _forward_proxy_filter(settings),
                _discovered(DESTINATIONS_FILTER, RBAC_TYPE),
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": TYPE + "envoy.extensions.filters.http.router.v3.Router"},
                },
            ],
            "access_log": [_decision_log()],
            # A tunnel's decision is logged when it opens, not only when it closes.
            # and a request or tunnel still running is logged every PERIODIC_LOG_SECONDS (activity for
            # the idle timeout; not a new decision).
            "access_log_options": {
                "flush_log_on_tunnel_successfully_established": True,
                "access_log_flush_interval": f"{PERIODIC_LOG_SECONDS}s",
            },
            "local_reply_config": {"mappers": _mappers(settings.limits)},
        },
    }


def _discovered(name: str, type_url: str) -> dict[str, Any]:
    """A filter whose config every listener shares over ECDS: Envoy builds it once, not once per session."""
    return {
        "name": name,
        "config_discovery": {
            "config_source": {"ads": {}, "resource_api_version": "V3"},
            "type_urls": [type_url],
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
                "buffer_flush_interval": f"{ACCESS_LOG_FLUSH_SECONDS}s",
            },
            "additional_response_headers_to_log": ["x-sandgate-deny-reason"],
        },
    }


def _forbidden_destination_mapper() -> dict[str, Any]:
    return {
        "filter": _cel("response.code_details.startsWith('rbac_access_denied')"),
        "headers_to_add": [_header("x-sandgate-deny-reason", "destination-ip-forbidden")],
        "body": {"inline_string": FORBIDDEN_BODY},
    }


def _mappers(limits: TenantLimits) -> list[dict[str, Any]]:
    """First match wins: the limits first, so that no broader mapper names their refusals otherwise."""
    named = [
        {"filter": _cel(expression), "headers_to_add": [_header(DENY_HEADER, reason)], "body": {"inline_string": body}}
        for expression, reason, body in limit_refusals(limits)
    ]
    return [*named, _auth_failure_mapper(), _forbidden_destination_mapper()]


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
