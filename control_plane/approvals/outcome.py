"""What an approval's outcome means: for the held requests (ext_authz) and in the decision log. Pure."""

from __future__ import annotations

from control_plane.approvals.book import ALLOWED_ONCE, ALLOWED_SESSION, DENIED, TIMED_OUT, Approval
from control_plane.audit.events import DecisionEvent
from control_plane.authz.decide import Decision
from control_plane.envoy_contract import ALLOWED, APPROVAL_DENIED, APPROVAL_TIMEOUT

APPROVAL_SOURCE = "approval"  # the decision log's `source` of an approval's outcome
APPROVED_ONCE = "approval-allowed-once"
APPROVED_FOR_SESSION = "approval-allowed-session"
_LOGGED = {
    ALLOWED_ONCE: ("allow", APPROVED_ONCE),
    ALLOWED_SESSION: ("allow", APPROVED_FOR_SESSION),
    DENIED: ("deny", APPROVAL_DENIED),
    TIMED_OUT: ("deny", APPROVAL_TIMEOUT),
}


def held_decision(state: str) -> Decision:
    """What the requests held on an approval get once it is closed in `state`."""
    if state in (ALLOWED_ONCE, ALLOWED_SESSION):
        return Decision(True, ALLOWED)
    return Decision(False, APPROVAL_TIMEOUT if state == TIMED_OUT else APPROVAL_DENIED)


def decision_event(approval: Approval, when: float) -> DecisionEvent:
    """The decision log's record of a closed approval, with who decided (the operator, or "timeout")."""
    verdict, reason = _LOGGED[approval.state]
    return DecisionEvent(
        id=0, time=when, session_id=approval.session_id, method=approval.method, host=approval.host,
        port=approval.port, verdict=verdict, reason=reason, source=APPROVAL_SOURCE, decided_by=approval.decided_by,
    )  # fmt: skip
