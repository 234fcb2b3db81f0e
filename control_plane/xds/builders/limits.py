"""What one session may take of Envoy's shared resources, and the shared egress cluster's thresholds.

Every session listener embeds its own connection limit and token bucket (not served once over ECDS):
each is a counter inside its filter config, so one config per listener is what makes them per session.
The egress cluster's circuit breakers are shared by every session; they are set far above what any one
session can reach (its connection limit), so the per-session limits, not the breakers, decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control_plane.envoy_contract import AUTHZ_UNAVAILABLE, PROXY_OVERLOADED, RATE_LIMITED, UPSTREAM_OVERFLOW
from control_plane.xds.types import PREFIX as TYPE

TUNNEL = "tunnel"
AUTHZ_UNAVAILABLE_BODY = (
    "Sandgate could not check this tunnel (authz-unavailable): its control plane did not answer in time. "
    "Nothing was forwarded; retry shortly.\n"
)
OVERLOADED_BODY = (
    "Sandgate's proxy is short of memory (proxy-overloaded) and takes no new requests until it recovers; "
    "retry shortly.\n"
)
OVERFLOW_BODY = (
    "Sandgate's proxy has reached its limit of upstream connections or requests for all sessions together "
    "(upstream-overflow); retry shortly. An operator sets it with the egress_max_* settings.\n"
)


@dataclass(frozen=True)
class TenantLimits:
    """Per-session bounds (each session listener) and the shared egress cluster's circuit breakers."""

    max_connections: int = 1024  # open connections per session listener; more are closed at once
    requests_per_second: int = 500  # requests and CONNECTs per session, sustained
    request_burst: int = 1000  # and at once, from a full bucket
    tunnels_per_second: int = 100  # CONNECTs alone (each costs a check in the control plane), sustained
    tunnel_burst: int = 500  # and at once
    buffer_bytes: int = 32 << 10  # per connection and direction, downstream and upstream
    egress_max_connections: int = 100_000
    egress_max_pending_requests: int = 100_000
    egress_max_requests: int = 100_000
    egress_max_retries: int = 1024


def connection_limit_filter(limits: TenantLimits) -> dict[str, Any]:
    """Closes a session's connections beyond `max_connections` as soon as Envoy accepts them."""
    return {
        "name": "envoy.filters.network.connection_limit",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit",
            "stat_prefix": "session",  # connection_limit.session.limited_connections, summed over sessions
            "max_connections": limits.max_connections,
        },
    }


def rate_limit_filter(limits: TenantLimits) -> dict[str, Any]:
    """Two token buckets per session: every request and CONNECT takes from the first, a CONNECT from the
    second as well (a tunnel costs an ext_authz check in the control plane). Either empty answers 429."""
    always = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}, "runtime_key": "sandgate_rate_limit"}
    is_connect = {"name": ":method", "string_match": {"exact": "CONNECT"}}
    return {
        "name": "envoy.filters.http.local_ratelimit",
        "typed_config": {
            "@type": TYPE + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "session",
            "token_bucket": _bucket(limits.request_burst, limits.requests_per_second),
            "rate_limits": [
                {"actions": [{"header_value_match": {"descriptor_value": TUNNEL, "headers": [is_connect]}}]}
            ],
            "descriptors": [
                {
                    "entries": [{"key": "header_match", "value": TUNNEL}],
                    "token_bucket": _bucket(limits.tunnel_burst, limits.tunnels_per_second),
                }
            ],
            "always_consume_default_token_bucket": True,
            "filter_enabled": always,
            "filter_enforced": always,
        },
    }


def _bucket(size: int, per_second: int) -> dict[str, Any]:
    return {"max_tokens": size, "tokens_per_fill": per_second, "fill_interval": "1s"}


def circuit_breakers(limits: TenantLimits) -> dict[str, Any]:
    """The egress cluster's thresholds: a backstop above any one session's reach (see `TenantLimits`)."""
    return {
        "thresholds": [
            {
                "priority": "DEFAULT",
                "max_connections": limits.egress_max_connections,
                "max_pending_requests": limits.egress_max_pending_requests,
                "max_requests": limits.egress_max_requests,
                "max_retries": limits.egress_max_retries,
                "track_remaining": True,
            }
        ]
    }


def limit_refusals(limits: TenantLimits) -> list[tuple[str, str, str]]:
    """What Envoy answers itself at a limit (or when a check cannot be made): for each, a CEL condition on
    the response (its code details), the deny reason it carries, and the body. See `audit.entries.verdict`."""
    rate_body = (
        f"Sandgate refused this request (rate-limited): this session sent more than {limits.requests_per_second} "
        f"requests a second (bursts up to {limits.request_burst}), or opened more than "
        f"{limits.tunnels_per_second} tunnels a second (bursts up to {limits.tunnel_burst}). Retry later. An "
        "operator sets the limits with session_requests_per_second, session_tunnels_per_second and their bursts.\n"
    )
    return [
        ("response.code_details == 'local_rate_limited'", RATE_LIMITED, rate_body),
        ("response.code_details.startsWith('ext_authz_error')", AUTHZ_UNAVAILABLE, AUTHZ_UNAVAILABLE_BODY),
        ("response.code_details == 'overload'", PROXY_OVERLOADED, OVERLOADED_BODY),
        ("response.code_details.endsWith('{overflow}')", UPSTREAM_OVERFLOW, OVERFLOW_BODY),
    ]
