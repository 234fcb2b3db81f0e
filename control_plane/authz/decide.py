"""The ext_authz decision: pure, data in, `Decision` out. Every failure is a deny (fail closed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from control_plane.domain.rules import EgressRule, find_rule, split_authority
from control_plane.envoy_contract import (
    ALLOWED,
    AUTH_REASONS,
    BAD_REQUEST,
    HOST_NOT_ALLOWED,
    SESSION_CLAIM,
    SESSION_NOT_READY,
    SESSION_UNKNOWN,
    TOKEN_ID_CLAIM,
    TOKEN_INVALID,
    TOKEN_REVOKED,
)


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, and why: `reason` is one of `envoy_contract.REASONS`."""

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
    if check.claims.get(SESSION_CLAIM) != session.session_id:
        return Decision(False, TOKEN_INVALID)
    if check.claims.get(TOKEN_ID_CLAIM) != session.token_id:
        return Decision(False, TOKEN_REVOKED)
    if not session.ready:
        return Decision(False, SESSION_NOT_READY)
    target = destination(check)
    if target is None:
        return Decision(False, BAD_REQUEST)
    if find_rule(session.rules, *target) is None:
        return Decision(False, HOST_NOT_ALLOWED)
    return Decision(True, ALLOWED)
