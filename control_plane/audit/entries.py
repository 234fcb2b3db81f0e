"""Envoy access-log entries to decision events. Pure: which verdict and reason a logged request had.

Only what Envoy itself produced is trusted: filter denials by their response code details, route
decisions by the names of our own routes. Headers an upstream sends cannot forge a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.authz.decide import AUTHZ_UNAVAILABLE, PROXY_OVERLOADED, RATE_LIMITED, UPSTREAM_OVERFLOW
from control_plane.domain.rules import split_authority

# Envoy's response code details for an upstream it could not reach, and for one that did not answer.
UNREACHABLE_DETAILS = ("upstream_reset_before_response_started", "no_healthy_upstream", "sub_cluster_warming_timeout")
DESTINATION_LIMIT_DETAILS = "sub_cluster_overflow"  # Envoy holds max_destinations destinations already
TIMEOUT_DETAILS = ("upstream_response_timeout", "upstream_per_try_timeout")
ALLOW_ROUTE = "allow:"
CREDENTIAL_MARK = "#credential:"  # an inspected allow route that injects a secret: `allow:<host>#credential:<name>`
DENY_ROUTE = "deny:"
WOULD_DENY_ROUTE = "would-deny:"


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


def session_of(listener_path: str) -> str:
    """The session whose listener socket (`.../sessions/<id>/proxy.sock`) took the request."""
    parts = listener_path.rsplit("/", 2)  # a string split: this runs for every request
    return parts[-2] if len(parts) > 1 else ""


def verdict(entry: LoggedRequest) -> tuple[str, str]:
    details, route = entry.details, entry.route_name
    refused = _refused_by_envoy(details)
    if refused:  # before the route: Envoy may have chosen an allow route before it answered itself
        return "deny", refused
    if details.startswith("jwt_authn_access_denied"):
        return "deny", "token-invalid"
    if details.startswith("rbac_access_denied"):
        return "deny", "destination-ip-forbidden"
    if details.startswith("ext_authz"):
        return "deny", entry.deny_header or "ext-authz-denied"
    if details == "direct_response" and route.startswith(DENY_ROUTE):
        return "deny", route.removeprefix(DENY_ROUTE)
    if route.startswith(WOULD_DENY_ROUTE):
        return "would_deny", route.removeprefix(WOULD_DENY_ROUTE)
    if route.startswith(ALLOW_ROUTE):
        return _allowed_route(entry)
    # No route of ours was chosen: Envoy refused the request before routing it (a malformed or
    # smuggling-shaped request, an invalid Host, headers too large).
    return "deny", "bad-request"


def _allowed_route(entry: LoggedRequest) -> tuple[str, str]:
    """The policy allowed it; what Envoy answered itself is not an allow (the upstream never saw it)."""
    details = entry.details
    if entry.response_code < 400 or details == "via_upstream":
        return "allow", "allowed"
    if details == "upgrade_failed":
        return "deny", "upgrade-not-supported"
    if details == DESTINATION_LIMIT_DETAILS:
        return "error", "destination-limit"
    if details.startswith(UNREACHABLE_DETAILS):
        return "error", "upstream-unreachable"
    if details.startswith(TIMEOUT_DETAILS) or entry.response_code == 504:
        return "error", "upstream-timeout"
    if entry.response_code >= 500:
        return "error", "upstream-unreachable"
    return "deny", "bad-request"


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


def credential_of(route_name: str) -> str:
    """The name of the secret the chosen route injected ("" if none): a name, never a value."""
    return route_name.partition(CREDENTIAL_MARK)[2] if route_name.startswith(ALLOW_ROUTE) else ""


def destination(entry: LoggedRequest) -> tuple[str, int]:
    default = 443 if entry.method == "CONNECT" else 80
    return split_authority(entry.authority, default) or (entry.authority, 0)
