"""The contract between the control plane and Envoy: every name both sides must spell the same way.

The xDS builders write these names into Envoy's config; ext_authz and the access-log receiver read them back
from what Envoy sends. A name changed here changes on both sides at once. Pure: constants and string
functions only (docs/SECURITY.md, "Deny reasons and verdicts", is the table for people).
"""

from __future__ import annotations

# ---- reasons: the closed set ---------------------------------------------------------------------------
# Each is a metric label (`sandgate_decisions_total{reason}`, `sandgate_ext_authz_checks_total{reason}`), the
# reason stored with a decision, and the value of DENY_HEADER or ERROR_HEADER on the response.
ALLOWED = "allowed"
# ext_authz's own answers
SESSION_UNKNOWN = "session-unknown"
SESSION_NOT_READY = "session-not-ready"
TOKEN_INVALID = "token-invalid"
TOKEN_REVOKED = "token-revoked"
HOST_NOT_ALLOWED = "host-not-allowed"
BAD_REQUEST = "bad-request"
INTERNAL_ERROR = "internal-error"
EXT_AUTHZ_DENIED = "ext-authz-denied"  # an ext_authz denial that carried no reason header
# the routes' answers
METHOD_NOT_ALLOWED = "method-not-allowed"
TUNNEL_NOT_INSPECTABLE = "tunnel-not-inspectable"
POLICY_DENIED = "destination-denied-by-policy"
SESSION_ENDED = "session-ended"
# inspected requests (HTTPS inspection): a path no rule's globs allow, a secret's placeholder for another host
PATH_NOT_ALLOWED = "path-not-allowed"
CREDENTIAL_HOST_MISMATCH = "credential-host-mismatch"
# Envoy's own answers: a forbidden address, a refused upgrade, a session over its request rate, a check that
# could not be made (timeout, control plane down), Envoy short of memory, the egress circuit breakers open.
DESTINATION_IP_FORBIDDEN = "destination-ip-forbidden"
UPGRADE_NOT_SUPPORTED = "upgrade-not-supported"
RATE_LIMITED = "rate-limited"
AUTHZ_UNAVAILABLE = "authz-unavailable"
PROXY_OVERLOADED = "proxy-overloaded"
UPSTREAM_OVERFLOW = "upstream-overflow"
# on_unlisted ASK: the request was held on an approval, and an operator denied it or nobody decided in time
APPROVAL_DENIED = "approval-denied"
APPROVAL_TIMEOUT = "approval-timeout"
# allowed, but Envoy could not complete it (verdict "error", ERROR_HEADER)
DESTINATION_LIMIT = "destination-limit"
UPSTREAM_UNREACHABLE = "upstream-unreachable"
UPSTREAM_TIMEOUT = "upstream-timeout"

REASONS = frozenset(
    {
        ALLOWED, SESSION_UNKNOWN, SESSION_NOT_READY, TOKEN_INVALID, TOKEN_REVOKED, HOST_NOT_ALLOWED, BAD_REQUEST,
        INTERNAL_ERROR, EXT_AUTHZ_DENIED, METHOD_NOT_ALLOWED, TUNNEL_NOT_INSPECTABLE, POLICY_DENIED, SESSION_ENDED,
        DESTINATION_IP_FORBIDDEN, UPGRADE_NOT_SUPPORTED, RATE_LIMITED, AUTHZ_UNAVAILABLE, PROXY_OVERLOADED,
        UPSTREAM_OVERFLOW, DESTINATION_LIMIT, UPSTREAM_UNREACHABLE, UPSTREAM_TIMEOUT, APPROVAL_DENIED,
        APPROVAL_TIMEOUT, PATH_NOT_ALLOWED, CREDENTIAL_HOST_MISMATCH,
    }
)  # fmt: skip
AUTH_REASONS = frozenset({TOKEN_INVALID, TOKEN_REVOKED})  # answered 407, not 403

# ---- verdicts ---------------------------------------------------------------------------------------------
ALLOW = "allow"
DENY = "deny"
WOULD_DENY = "would_deny"  # report mode: forwarded, and what the allowlist would have said
ERROR = "error"

# ---- headers ----------------------------------------------------------------------------------------------
DENY_HEADER = "x-sandgate-deny-reason"  # on a denial; Envoy logs it, the access-log receiver reads it
ERROR_HEADER = "x-sandgate-error"  # on an allowed request Envoy could not complete
WOULD_DENY_HEADER = "x-sandgate-would-deny"  # report mode, on the forwarded response
TOKEN_HEADER = "x-sandgate-token"  # the unwrapped session token, from the Lua filter to jwt_authn
PROXY_AUTHENTICATE = ("proxy-authenticate", 'Basic realm="sandgate"')  # with every 407

# ---- route names: how a logged request names the route that decided it ------------------------------------
# `allow:<host>`, `deny:<reason>`, and in report mode `would-deny:<reason>`; `access_log` parses them back.
ALLOW_ROUTE = "allow:"
DENY_ROUTE = "deny:"
WOULD_DENY_ROUTE = "would-deny:"
ASK_ROUTE = "ask:"  # an ASK session's catch-all: forwarded only once an approval let the request through
CREDENTIAL_MARK = "#credential:"  # an inspected allow route that injects a secret: `allow:<host>#credential:<name>`


def allow_route(host: str) -> str:
    """The name of the routes that forward to `host`'s rule."""
    return ALLOW_ROUTE + host


def deny_route(reason: str, report_only: bool = False) -> str:
    """The name of a route that refuses for `reason`, or in report mode forwards and logs that it would have."""
    return (WOULD_DENY_ROUTE if report_only else DENY_ROUTE) + reason


# ---- session resources ------------------------------------------------------------------------------------
SESSION_PREFIX = "session-"  # a session's listener and its route configuration share this name
SOCKET_NAME = "proxy.sock"  # the listener's socket, in the session's directory
INSPECTED_LISTENER_PREFIX = "inspect-session-"  # a session's internal listener for decrypted (inspected) requests


def session_resource_name(session_id: str) -> str:
    return SESSION_PREFIX + session_id


def credential_of(route_name: str) -> str:
    """The name of the secret the chosen route injected ("" if none): a name, never a value."""
    return route_name.partition(CREDENTIAL_MARK)[2] if route_name.startswith(ALLOW_ROUTE) else ""


def inspect_name(session_id: str) -> str:
    """The name of a session's internal listener for inspected tunnels, its cluster and its inner routes; the
    access log names the listener of a decrypted request so (`audit/als_wire.py` reads the session from it)."""
    return INSPECTED_LISTENER_PREFIX + session_id


def session_of(listener_path: str) -> str:
    """The session whose listener socket (`.../sessions/<id>/proxy.sock`) took the request."""
    parts = listener_path.rsplit("/", 2)  # a string split: this runs for every request
    return parts[-2] if len(parts) > 1 else ""


# ---- the verified token, from jwt_authn to ext_authz ------------------------------------------------------
JWT_FILTER = "envoy.filters.http.jwt_authn"  # also the dynamic-metadata namespace it writes
JWT_PROVIDER = "session"
JWT_PAYLOAD_KEY = "jwt_payload"  # where jwt_authn puts the verified claims
SESSION_CLAIM = "sid"
TOKEN_ID_CLAIM = "jti"
# ext_authz context extensions a session's CONNECT route sends
SESSION_ID_EXTENSION = "session_id"
RULE_EXTENSION = "rule"
UNLISTED_EXTENSION = "unlisted"  # an ASK session's catch-all sends it, valued UNLISTED: hold for an approval
UNLISTED = "ask"

# ---- Envoy's response code details, as Envoy 1.40 writes them ---------------------------------------------
UNREACHABLE_DETAILS = ("upstream_reset_before_response_started", "no_healthy_upstream", "sub_cluster_warming_timeout")
DESTINATION_LIMIT_DETAILS = "sub_cluster_overflow"  # Envoy holds max_destinations destinations already
TIMEOUT_DETAILS = ("upstream_response_timeout", "upstream_per_try_timeout")

# ---- intervals --------------------------------------------------------------------------------------------
ACCESS_LOG_FLUSH_SECONDS = 0.2  # how long Envoy may hold a finished request's access-log entry before sending it
PERIODIC_LOG_SECONDS = 10  # a request or tunnel still running is logged this often (activity, not a decision)
