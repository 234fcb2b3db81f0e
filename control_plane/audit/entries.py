"""Envoy access-log entries to decision events. Pure: which verdict and reason a logged request had.

Only what Envoy itself produced is trusted: filter denials by their response code details, route
decisions by the names of our own routes. Headers an upstream sends cannot forge a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.domain.rules import split_authority
from control_plane.envoy_contract import (
    ALLOW,
    ALLOW_ROUTE,
    ALLOWED,
    ASK_ROUTE,
    AUTHZ_UNAVAILABLE,
    BAD_REQUEST,
    DENY,
    DENY_ROUTE,
    DESTINATION_IP_FORBIDDEN,
    DESTINATION_LIMIT,
    DESTINATION_LIMIT_DETAILS,
    ERROR,
    EXT_AUTHZ_DENIED,
    PROXY_OVERLOADED,
    RATE_LIMITED,
    TIMEOUT_DETAILS,
    TOKEN_INVALID,
    UNREACHABLE_DETAILS,
    UPGRADE_NOT_SUPPORTED,
    UPSTREAM_OVERFLOW,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNREACHABLE,
    WOULD_DENY,
    WOULD_DENY_ROUTE,
)


@dataclass(frozen=True)
class LoggedRequest:
    """The parts of an HTTPAccessLogEntry that a decision needs."""

    listener_path: str
    method: str
    authority: str
    response_code: int
    details: str
    route_name: str
    deny_header: str
    bytes_sent: int
    bytes_received: int
    duration_ms: float
    start_time: float
    stream_id: str = ""
    log_type: str = "DownstreamEnd"
    path: str = ""  # without the query; a CONNECT has none

    @property
    def opens_tunnel(self) -> bool:
        return self.log_type == "DownstreamTunnelSuccessfullyEstablished"

    @property
    def periodic(self) -> bool:
        """Envoy's periodic entry for a request or tunnel that is still running."""
        return self.log_type == "DownstreamPeriodic"

    @property
    def closes_tunnel(self) -> bool:
        """The end of a tunnel whose opening was already logged (and recorded)."""
        return self.method == "CONNECT" and self.response_code == 200 and self.log_type == "DownstreamEnd"


def verdict(entry: LoggedRequest) -> tuple[str, str]:
    """(verdict, reason) of a logged request, both from `envoy_contract`."""
    details, route = entry.details, entry.route_name
    refused = _refused_by_envoy(details)
    if refused:  # before the route: Envoy may have chosen an allow route before it answered itself
        return DENY, refused
    if details.startswith("jwt_authn_access_denied"):
        return DENY, TOKEN_INVALID
    if details.startswith("rbac_access_denied"):
        return DENY, DESTINATION_IP_FORBIDDEN
    if details.startswith("ext_authz"):
        return DENY, entry.deny_header or EXT_AUTHZ_DENIED
    if details == "direct_response" and route.startswith(DENY_ROUTE):
        return DENY, route.removeprefix(DENY_ROUTE)
    if route.startswith(WOULD_DENY_ROUTE):
        return WOULD_DENY, route.removeprefix(WOULD_DENY_ROUTE)
    if route.startswith((ALLOW_ROUTE, ASK_ROUTE)):
        return _allowed_route(entry)
    # No route of ours was chosen: Envoy refused the request before routing it (a malformed or
    # smuggling-shaped request, an invalid Host, headers too large).
    return DENY, BAD_REQUEST


def _allowed_route(entry: LoggedRequest) -> tuple[str, str]:
    """The policy allowed it; what Envoy answered itself is not an allow (the upstream never saw it)."""
    details = entry.details
    if entry.response_code < 400 or details == "via_upstream":
        return ALLOW, ALLOWED
    if details == "upgrade_failed":
        return DENY, UPGRADE_NOT_SUPPORTED
    if details == DESTINATION_LIMIT_DETAILS:
        return ERROR, DESTINATION_LIMIT
    if details.startswith(UNREACHABLE_DETAILS):
        return ERROR, UPSTREAM_UNREACHABLE
    if details.startswith(TIMEOUT_DETAILS) or entry.response_code == 504:
        return ERROR, UPSTREAM_TIMEOUT
    if entry.response_code >= 500:
        return ERROR, UPSTREAM_UNREACHABLE
    return DENY, BAD_REQUEST


def _refused_by_envoy(details: str) -> str:
    """The reason when Envoy answered itself for a limit or an unavailable check; "" otherwise."""
    if details == "local_rate_limited":
        return RATE_LIMITED
    if details.startswith("ext_authz_error"):
        return AUTHZ_UNAVAILABLE
    if details == "overload":
        return PROXY_OVERLOADED
    if details.endswith("{overflow}"):
        return UPSTREAM_OVERFLOW
    return ""


def destination(entry: LoggedRequest) -> tuple[str, int]:
    default = 443 if entry.method == "CONNECT" else 80
    return split_authority(entry.authority, default) or (entry.authority, 0)
