"""A session's listener: a unix socket whose HTTP filter chain verifies the token on every request."""

from __future__ import annotations

import json
from typing import Any

from control_plane.domain.tokens import ISSUER
from control_plane.envoy_contract import (
    ACCESS_LOG_FLUSH_SECONDS,
    DENY_HEADER,
    JWT_FILTER,
    JWT_PAYLOAD_KEY,
    JWT_PROVIDER,
    PERIODIC_LOG_SECONDS,
    TOKEN_HEADER,
    session_resource_name,
)
from control_plane.xds.builders import CONTROL_PLANE_CLUSTER, SANDBOX_API_MAX_BODY_BYTES, TYPE, EgressSettings
from control_plane.xds.builders.limits import connection_limit_filter, limit_refusals, rate_limit_filter
from control_plane.xds.builders.local_reply import local_reply_mappers
from control_plane.xds.builders.shared import LUA_TYPE, UNWRAP_TOKEN_FILTER

EXT_AUTHZ_FILTER = "envoy.filters.http.ext_authz"
BUFFER_FILTER = "envoy.filters.http.buffer"  # off but on the sandbox API's route (route.py)
REQUEST_HEADERS_TIMEOUT = "10s"  # a request's headers arrive at once from any real client


AUTHZ_TIMEOUT_S = 2.0  # a check that holds nothing
APPROVAL_TIMEOUT_MARGIN_S = 15.0  # an allow_session waits for Envoy's ACK of the new rule (apply_timeout)


def render_session_listener(
    session_id: str, socket_path: str, jwks: dict[str, Any], settings: EgressSettings, holds: bool = False
) -> dict[str, Any]:
    """`holds`: the session's checks may wait on an approval (on_unlisted ASK), up to its timeout."""
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
            {
                "filters": [
                    connection_limit_filter(settings.limits),
                    _connection_manager(session_id, jwks, settings, _authz_timeout(settings, holds)),
                ]
            }
        ],
    }


def _authz_timeout(settings: EgressSettings, holds: bool) -> float:
    """A held check answers by the approval timeout, or after an allow_session is applied (bounded too)."""
    return settings.approval_timeout_s + APPROVAL_TIMEOUT_MARGIN_S if holds else AUTHZ_TIMEOUT_S


def _connection_manager(
    session_id: str, jwks: dict[str, Any], settings: EgressSettings, authz_timeout_s: float
) -> dict[str, Any]:
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
            "request_headers_timeout": REQUEST_HEADERS_TIMEOUT,
            # HTTP/1.0 too: Python up to 3.11 opens tunnels with `CONNECT host:port HTTP/1.0` (docs/COMPATIBILITY.md).
            "http_protocol_options": {"allow_absolute_url": True, "accept_http_10": True},
            # `allowed.test.` is `allowed.test`: a trailing dot must not make a name miss its rule.
            "strip_trailing_host_dot": True,
            # Path rules match the normalized path (`/a/../b` is `/b`), which is what is sent on; `//` is kept
            # (a transparent proxy), and a glob's `*` never spans it.
            "normalize_path": True,
            # A transparent proxy: nothing of Envoy's own reaches the upstream or the client (no request id,
            # no `server: envoy`, no x-envoy-* headers), and the sandbox is an external client, so any
            # x-envoy-* header it sends (retries, timeouts) is removed before the router could obey it.
            "generate_request_id": False,
            "server_header_transformation": "PASS_THROUGH",
            "use_remote_address": True,
            "skip_xff_append": True,
            "internal_address_config": {"unix_sockets": False},
            "upgrade_configs": [{"upgrade_type": "CONNECT"}, {"upgrade_type": "websocket"}],
            "common_http_protocol_options": {"idle_timeout": f"{settings.idle_timeout_s}s"},
            # The only timeout on an open tunnel or stream (docs/COMPATIBILITY.md, "Tunnels"); 0s: none.
            "stream_idle_timeout": f"{settings.stream_idle_timeout_s}s",
            "max_request_headers_kb": 60,
            "http_filters": [
                rate_limit_filter(settings.limits),  # first: a flood costs neither a token check nor ext_authz
                _discovered(UNWRAP_TOKEN_FILTER, LUA_TYPE),
                _jwt_filter(session_id, jwks),
                _ext_authz_filter(authz_timeout_s),
                _forward_proxy_filter(),
                _buffer_filter(),
                _router(),
            ],
            "access_log": [_decision_log()],
            # A tunnel's decision is logged when it opens, not only when it closes.
            # and a request or tunnel still running is logged every PERIODIC_LOG_SECONDS (activity for
            # the idle timeout; not a new decision).
            "access_log_options": {
                "flush_log_on_tunnel_successfully_established": True,
                "access_log_flush_interval": f"{PERIODIC_LOG_SECONDS}s",
            },
            "local_reply_config": {"mappers": local_reply_mappers(limit_refusals(settings.limits))},
        },
    }


def inner_connection_manager(route_name: str, settings: EgressSettings) -> dict[str, Any]:
    """The HTTP connection manager of decrypted requests (builders/inspect.py): routes `route_name` decide each
    one, as the session listener decides plain HTTP; the tunnel it arrived in was already authorized."""
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "inspected",
            "rds": {"route_config_name": route_name, "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "codec_type": "HTTP1",
            "request_headers_timeout": REQUEST_HEADERS_TIMEOUT,
            "strip_trailing_host_dot": True,
            "normalize_path": True,
            "generate_request_id": False,
            "server_header_transformation": "PASS_THROUGH",
            "use_remote_address": True,
            "skip_xff_append": True,
            "internal_address_config": {"unix_sockets": False},
            "common_http_protocol_options": {"idle_timeout": f"{settings.idle_timeout_s}s"},
            "stream_idle_timeout": f"{settings.stream_idle_timeout_s}s",
            "max_request_headers_kb": 60,
            "http_filters": [_forward_proxy_filter(), _router()],
            "access_log": [_decision_log()],
            "local_reply_config": {"mappers": local_reply_mappers()},
        },
    }


def _router() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.router",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.router.v3.Router",
            "suppress_envoy_headers": True,
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
        "payload_in_metadata": JWT_PAYLOAD_KEY,
        "jwt_cache_config": {"jwt_cache_size": 16},
    }
    required = {"provider_name": JWT_PROVIDER}
    return {
        "name": JWT_FILTER,
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {JWT_PROVIDER: provider},
            "rules": [
                {"match": {"connect_matcher": {}}, "requires": required},
                {"match": {"prefix": "/"}, "requires": required},
            ],
        },
    }


def _ext_authz_filter(timeout_s: float) -> dict[str, Any]:
    return {
        "name": EXT_AUTHZ_FILTER,
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpc_service": {"envoy_grpc": {"cluster_name": CONTROL_PLANE_CLUSTER}, "timeout": f"{timeout_s:g}s"},
            "transport_api_version": "V3",
            "failure_mode_allow": False,
            "metadata_context_namespaces": [JWT_FILTER],
        },
    }


def _buffer_filter() -> dict[str, Any]:
    """Off by default; the sandbox API's route turns it on (route.py): Envoy has each request whole before it
    opens an upstream request for it, and answers 413 past SANDBOX_API_MAX_BODY_BYTES."""
    buffer = {"@type": TYPE + "envoy.extensions.filters.http.buffer.v3.Buffer"}
    return {
        "name": BUFFER_FILTER,
        "typed_config": {**buffer, "max_request_bytes": SANDBOX_API_MAX_BODY_BYTES},
        "disabled": True,
    }


def _forward_proxy_filter() -> dict[str, Any]:
    """Creates (or finds) the destination's sub-cluster and waits for its DNS answer; see builders/cluster.py."""
    return {
        "name": "envoy.filters.http.dynamic_forward_proxy",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
            "sub_cluster_config": {"cluster_init_timeout": "5s"},
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
            "additional_response_headers_to_log": [DENY_HEADER],
        },
    }
