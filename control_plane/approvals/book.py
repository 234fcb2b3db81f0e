"""Pending approvals, as a pure state machine: no I/O, no clock of its own, no asyncio.

An approval is either a destination (session, host, port) that held requests wait on, coalesced, or a rule a
sandbox proposed with a reason. It leaves the book when an operator decides it or it times out.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, replace

from control_plane.domain.rules import EgressRule
from control_plane.errors import CapacityExhausted, FailedPrecondition, InvalidArgument, NotFound

REQUEST = "request"  # requests are held on it
PROPOSAL = "proposal"  # a sandbox asked for a rule; nothing is held

PENDING = "pending"
DECIDING = "deciding"  # an operator's allow_session is being applied (and ACKed)
ALLOWED_ONCE = "allowed_once"
ALLOWED_SESSION = "allowed_session"
DENIED = "denied"
TIMED_OUT = "timed_out"
OUTCOMES = {"allow_once": ALLOWED_ONCE, "allow_session": ALLOWED_SESSION, "deny": DENIED}
TIMEOUT_OPERATOR = "timeout"  # who decided a timed-out approval

MAX_REASON_CHARS = 280


@dataclass(frozen=True)
class Approval:
    id: str
    session_id: str
    kind: str  # REQUEST or PROPOSAL
    rule: EgressRule  # what allow_session adds: the destination's host and port, or the proposed rule
    created_at: float  # seconds since the epoch
    expires_at: float  # 0: never (a proposal waits for an operator, or the session's end)
    method: str = ""  # the first held request's method
    reason: str = ""  # a proposal's reason, as the sandbox wrote it
    state: str = PENDING
    decided_by: str = ""
    held: int = 0  # requests held on it so far (coalesced)

    @property
    def host(self) -> str:
        return self.rule.host

    @property
    def destination(self) -> tuple[str, str, int]:
        """What held requests are coalesced by: session, host, port."""
        return self.session_id, self.host, self.port

    @property
    def port(self) -> int:
        return self.rule.ports[0] if self.kind == REQUEST else 0

    def to_dict(self) -> dict[str, object]:
        body = asdict(self)
        body.update(host=self.host, port=self.port, rule=self.rule.to_dict())
        return body


def check_reason(reason: str) -> str:
    """A proposal's reason: 1 to MAX_REASON_CHARS printable characters; InvalidArgument naming `reason`."""
    text = reason.strip()
    if not 1 <= len(text) <= MAX_REASON_CHARS:
        raise InvalidArgument(f"must be 1 to {MAX_REASON_CHARS} characters", field="reason")
    if not text.isprintable():
        raise InvalidArgument("must be printable text on one line", field="reason")
    return text


class ApprovalBook:
    """At most `max_pending` approvals per session; one per destination for held requests."""

    def __init__(self, max_pending: int = 16) -> None:
        self._max_pending = max_pending
        self._open: dict[str, Approval] = {}

    def hold(
        self, session_id: str, host: str, port: int, method: str, now: float, timeout: float
    ) -> tuple[Approval, bool]:
        """The destination's open approval, or a new one (True); CapacityExhausted past the session's bound."""
        for approval in self._open.values():
            if approval.kind == REQUEST and approval.destination == (session_id, host, port):
                self._open[approval.id] = replace(approval, held=approval.held + 1)
                return self._open[approval.id], False
        rule = EgressRule(host, (port,))
        return self._add(Approval(_new_id(), session_id, REQUEST, rule, now, now + timeout, method, held=1)), True

    def propose(self, session_id: str, rule: EgressRule, reason: str, now: float) -> tuple[Approval, bool]:
        """A pending proposal of `rule`, new (True) or the same rule proposed before; InvalidArgument for a bad
        reason, CapacityExhausted past the session's bound."""
        text = check_reason(reason)
        for approval in self._open.values():
            if approval.kind == PROPOSAL and approval.session_id == session_id and approval.rule == rule:
                return approval, False
        return self._add(Approval(_new_id(), session_id, PROPOSAL, rule, now, 0.0, reason=text)), True

    def claim(self, approval_id: str, decision: str) -> Approval:
        """Start deciding: NotFound, FailedPrecondition if another decision is under way, InvalidArgument
        for an unknown decision or allow_once on a proposal (nothing is held on it)."""
        if decision not in OUTCOMES:
            raise InvalidArgument(f"must be one of {sorted(OUTCOMES)}", field="decision")
        approval = self._get(approval_id)
        if approval.state == DECIDING:
            raise FailedPrecondition(f"approval {approval_id} is being decided already")
        if approval.kind == PROPOSAL and decision == "allow_once":
            raise InvalidArgument(
                "a proposal holds no request: allow it with allow_session, or deny it", field="decision"
            )
        claimed = replace(approval, state=DECIDING)
        self._open[approval_id] = claimed
        return claimed

    def release(self, approval_id: str) -> None:
        """The claimed decision could not be applied: the approval is pending again."""
        if approval_id in self._open:
            self._open[approval_id] = replace(self._open[approval_id], state=PENDING)

    def resolve(self, approval_id: str, decision: str, by: str) -> Approval:
        """Close a claimed approval with the operator's decision."""
        approval = self._open.pop(approval_id)
        return replace(approval, state=OUTCOMES[decision], decided_by=by)

    def expire(self, approval_id: str) -> Approval | None:
        """Close a pending approval as timed out; None if it was decided meanwhile or is being decided."""
        approval = self._open.get(approval_id)
        if approval is None or approval.state != PENDING:
            return None
        del self._open[approval_id]
        return replace(approval, state=TIMED_OUT, decided_by=TIMEOUT_OPERATOR)

    def drop_session(self, session_id: str) -> list[Approval]:
        """Forget a session's approvals (it ended); those returned were still open."""
        gone = [a for a in self._open.values() if a.session_id == session_id]
        for approval in gone:
            del self._open[approval.id]
        return gone

    def get(self, approval_id: str) -> Approval:
        return self._get(approval_id)

    def pending(self, session_id: str = "") -> list[Approval]:
        """Open approvals, oldest first; only `session_id`'s if given."""
        found = [a for a in self._open.values() if not session_id or a.session_id == session_id]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    def _get(self, approval_id: str) -> Approval:
        approval = self._open.get(approval_id)
        if approval is None:
            raise NotFound(f"no open approval {approval_id!r} (it was decided, timed out, or its session ended)")
        return approval

    def _add(self, approval: Approval) -> Approval:
        if len(self.pending(approval.session_id)) >= self._max_pending:
            raise CapacityExhausted(
                f"session {approval.session_id} has {self._max_pending} open approvals already", field="approvals"
            )
        self._open[approval.id] = approval
        return approval


def _new_id() -> str:
    return "a-" + secrets.token_hex(8)
