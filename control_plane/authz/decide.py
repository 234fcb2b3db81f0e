"""The ext_authz decision: pure, data in, `Decision` out. Every failure is a deny (fail closed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from control_plane.domain.rules import EgressRule, find_rule, split_authority

# The closed set of reasons; each doubles as a metric label and the x-sandgate-deny-reason value.
ALLOWED = "allowed"
SESSION_UNKNOWN = "session-unknown"
SESSION_NOT_READY = "session-not-ready"
TOKEN_INVALID = "token-invalid"
TOKEN_REVOKED = "token-revoked"
HOST_NOT_ALLOWED = "host-not-allowed"
BAD_REQUEST = "bad-request"
INTERNAL_ERROR = "internal-error"
# Envoy answers these itself: a session over its request rate, a check that could not be made (timeout,
# control plane down), Envoy short of memory, the shared egress cluster's circuit breakers open.
RATE_LIMITED = "rate-limited"
AUTHZ_UNAVAILABLE = "authz-unavailable"
PROXY_OVERLOADED = "proxy-overloaded"
UPSTREAM_OVERFLOW = "upstream-overflow"
# With on_unlisted ASK: the request was held on an approval, and an operator denied it or nobody decided in time.
APPROVAL_DENIED = "approval-denied"
APPROVAL_TIMEOUT = "approval-timeout"
UNLISTED = "ask"  # the context extension `unlisted` that an ASK session's catch-all route sends
REASONS = frozenset(
    {
        ALLOWED,
        SESSION_UNKNOWN,
        SESSION_NOT_READY,
        TOKEN_INVALID,
        TOKEN_REVOKED,
        HOST_NOT_ALLOWED,
        BAD_REQUEST,
        INTERNAL_ERROR,
        RATE_LIMITED,
        AUTHZ_UNAVAILABLE,
        PROXY_OVERLOADED,
        UPSTREAM_OVERFLOW,
        APPROVAL_DENIED,
        APPROVAL_TIMEOUT,
    }
)
AUTH_REASONS = frozenset({TOKEN_INVALID, TOKEN_REVOKED})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str

    @property
    def http_status(self) -> int:
        if self.allowed:
            return 200
        return 407 if self.reason in AUTH_REASONS else 403


@dataclass(frozen=True)
class SessionView:
    """What the decision needs to know of a session."""

    session_id: str
    ready: bool
    token_id: str
    rules: tuple[EgressRule, ...]
    ask: bool = False  # on_unlisted ASK: a request no rule covers waits for an operator


@dataclass(frozen=True)
class CheckInput:
    session_id: str
    method: str
    authority: str
    claims: Mapping[str, object]
    unlisted: bool = False  # sent by the catch-all route of an ASK session (no rule covers the destination)


def destination(check: CheckInput) -> tuple[str, int] | None:
    """The request's host and port (443 for CONNECT, 80 for plain HTTP unless given); None if unreadable."""
    return split_authority(check.authority, 443 if check.method == "CONNECT" else 80)


def needs_approval(check: CheckInput, session: SessionView | None, decision: Decision) -> bool:
    """A request to an ASK session's unlisted destination that nothing else refused: it waits for an operator."""
    return session is not None and session.ask and check.unlisted and decision.reason == HOST_NOT_ALLOWED


def decide(check: CheckInput, session: SessionView | None) -> Decision:
    """Allow only a live session's own, unrevoked token, to a destination its rules allow."""
    if session is None:
        return Decision(False, SESSION_UNKNOWN)
    if check.claims.get("sid") != session.session_id:
        return Decision(False, TOKEN_INVALID)
    if check.claims.get("jti") != session.token_id:
        return Decision(False, TOKEN_REVOKED)
    if not session.ready:
        return Decision(False, SESSION_NOT_READY)
    target = destination(check)
    if target is None:
        return Decision(False, BAD_REQUEST)
    if find_rule(session.rules, *target) is None:
        return Decision(False, HOST_NOT_ALLOWED)
    return Decision(True, ALLOWED)
