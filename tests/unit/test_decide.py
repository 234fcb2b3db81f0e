"""Table-driven: every ext_authz decision asserts its reason as well as its verdict."""

from __future__ import annotations

import pytest

from control_plane import envoy_contract as c
from control_plane.authz import decide as d
from control_plane.domain.rules import EgressRule

SESSION = d.SessionView("s-1", ready=True, token_id="jti-1", rules=(EgressRule("ok.test", (443,)),))
CLAIMS = {"sid": "s-1", "jti": "jti-1"}


@pytest.mark.parametrize(
    ("session", "claims", "authority", "allowed", "reason", "status"),
    [
        (SESSION, CLAIMS, "ok.test:443", True, c.ALLOWED, 200),
        (None, CLAIMS, "ok.test:443", False, c.SESSION_UNKNOWN, 403),
        (SESSION, {"sid": "s-2", "jti": "jti-1"}, "ok.test:443", False, c.TOKEN_INVALID, 407),
        (SESSION, {}, "ok.test:443", False, c.TOKEN_INVALID, 407),
        (SESSION, {"sid": "s-1", "jti": "old"}, "ok.test:443", False, c.TOKEN_REVOKED, 407),
        (d.SessionView("s-1", False, "jti-1", SESSION.rules), CLAIMS, "ok.test:443", False, c.SESSION_NOT_READY, 403),
        (SESSION, CLAIMS, "ok.test:22", False, c.HOST_NOT_ALLOWED, 403),
        (SESSION, CLAIMS, "other.test:443", False, c.HOST_NOT_ALLOWED, 403),
        (SESSION, CLAIMS, "ok.test:x", False, c.BAD_REQUEST, 403),
    ],
)
def test_decide(
    session: d.SessionView | None, claims: dict[str, str], authority: str, allowed: bool, reason: str, status: int
) -> None:
    decision = d.decide(d.CheckInput("s-1", "CONNECT", authority, claims), session)
    assert (decision.allowed, decision.reason, decision.http_status) == (allowed, reason, status)
    assert decision.reason in c.REASONS
