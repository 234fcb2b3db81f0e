"""The approval book's state machine, what each outcome means, and the desk that holds requests on it."""

from __future__ import annotations

import asyncio

import pytest

from control_plane import envoy_contract as c
from control_plane.approvals import book as b
from control_plane.approvals.desk import ApprovalDesk
from control_plane.approvals.outcome import decision_event, held_decision
from control_plane.authz import decide as d
from control_plane.domain.rules import EgressRule
from control_plane.errors import CapacityExhausted, FailedPrecondition, InvalidArgument, NotFound

RULE = EgressRule("api.test", (443,))

NO_INSPECTION = {"paths": [], "inspect": False, "credential": ""}


def test_requests_for_one_destination_share_an_approval() -> None:
    book = b.ApprovalBook()
    first, new = book.hold("s-1", "a.test", 80, "GET", 100.0, 30.0)
    again, again_new = book.hold("s-1", "a.test", 80, "POST", 101.0, 30.0)
    assert (new, again_new, again.id, again.held, again.method) == (True, False, first.id, 2, "GET")
    assert (first.expires_at, first.rule) == (130.0, EgressRule("a.test", (80,)))
    other_port, _ = book.hold("s-1", "a.test", 443, "CONNECT", 100.0, 30.0)
    other_session, _ = book.hold("s-2", "a.test", 80, "GET", 100.0, 30.0)
    assert len({first.id, other_port.id, other_session.id}) == 3


def test_a_session_has_a_bounded_number_of_open_approvals() -> None:
    book = b.ApprovalBook(max_pending=2)
    book.hold("s-1", "a.test", 80, "GET", 0, 30)
    book.propose("s-1", RULE, "needed", 0)
    with pytest.raises(CapacityExhausted):
        book.hold("s-1", "c.test", 80, "GET", 0, 30)
    with pytest.raises(CapacityExhausted):
        book.propose("s-1", EgressRule("d.test"), "needed", 0)
    book.hold("s-1", "a.test", 80, "GET", 0, 30)  # coalescing onto an open approval needs no room
    book.hold("s-2", "c.test", 80, "GET", 0, 30)  # another session's room is its own


@pytest.mark.parametrize(
    ("decision", "state"),
    [("allow_once", b.ALLOWED_ONCE), ("allow_session", b.ALLOWED_SESSION), ("deny", b.DENIED)],
)
def test_a_claimed_approval_closes_with_the_decision_and_who_made_it(decision: str, state: str) -> None:
    book = b.ApprovalBook()
    approval, _ = book.hold("s-1", "a.test", 80, "GET", 0, 30)
    assert book.claim(approval.id, decision).state == b.DECIDING
    closed = book.resolve(approval.id, decision, "admin")
    assert (closed.state, closed.decided_by) == (state, "admin")
    assert book.pending() == []


@pytest.mark.parametrize(
    ("kind", "decision", "error", "field"),
    [
        (b.REQUEST, "allow", InvalidArgument, "decision"),
        (b.REQUEST, "", InvalidArgument, "decision"),
        (b.PROPOSAL, "allow_once", InvalidArgument, "decision"),
    ],
)
def test_bad_decisions_are_refused(kind: str, decision: str, error: type[Exception], field: str) -> None:
    book = b.ApprovalBook()
    if kind == b.REQUEST:
        approval, _ = book.hold("s-1", "a.test", 80, "GET", 0, 30)
    else:
        approval, _ = book.propose("s-1", RULE, "needed", 0)
    with pytest.raises(error) as raised:
        book.claim(approval.id, decision)
    assert getattr(raised.value, "field", None) == field
    assert book.get(approval.id).state == b.PENDING


def test_one_decision_at_a_time_and_none_after_closing() -> None:
    book = b.ApprovalBook()
    approval, _ = book.hold("s-1", "a.test", 80, "GET", 0, 30)
    book.claim(approval.id, "allow_session")
    with pytest.raises(FailedPrecondition):
        book.claim(approval.id, "deny")
    book.resolve(approval.id, "allow_session", "admin")
    with pytest.raises(NotFound):
        book.claim(approval.id, "deny")


def test_the_timeout_closes_only_a_pending_approval() -> None:
    book = b.ApprovalBook()
    approval, _ = book.hold("s-1", "a.test", 80, "GET", 0, 30)
    book.claim(approval.id, "allow_session")
    assert book.expire(approval.id) is None  # an allow_session being applied is not cut short
    book.release(approval.id)  # it failed: pending again
    expired = book.expire(approval.id)
    assert expired is not None
    assert (expired.state, expired.decided_by) == (b.TIMED_OUT, b.TIMEOUT_OPERATOR)
    assert book.expire(approval.id) is None


@pytest.mark.parametrize("reason", ["", "   ", "x" * (b.MAX_REASON_CHARS + 1), "two\nlines", "bell\a"])
def test_a_proposal_needs_a_short_printable_reason(reason: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        b.ApprovalBook().propose("s-1", RULE, reason, 0)
    assert raised.value.field == "reason"


def test_the_same_rule_proposed_twice_is_one_proposal() -> None:
    book = b.ApprovalBook()
    first, new = book.propose("s-1", RULE, " need the API ", 5.0)
    again, again_new = book.propose("s-1", RULE, "really", 6.0)
    assert (new, again_new, again.id, first.reason, first.expires_at) == (True, False, first.id, "need the API", 0.0)
    assert first.to_dict()["rule"] == {"host": "api.test", "ports": [443], "methods": [], **NO_INSPECTION}


def test_a_sessions_approvals_go_with_it() -> None:
    book = b.ApprovalBook()
    book.hold("s-1", "a.test", 80, "GET", 0, 30)
    book.propose("s-1", RULE, "needed", 0)
    kept, _ = book.hold("s-2", "a.test", 80, "GET", 0, 30)
    assert len(book.drop_session("s-1")) == 2
    assert book.pending() == [kept]


@pytest.mark.parametrize(
    ("state", "allowed", "reason"),
    [
        (b.ALLOWED_ONCE, True, c.ALLOWED),
        (b.ALLOWED_SESSION, True, c.ALLOWED),
        (b.DENIED, False, c.APPROVAL_DENIED),
        (b.TIMED_OUT, False, c.APPROVAL_TIMEOUT),
    ],
)
def test_what_held_requests_get(state: str, allowed: bool, reason: str) -> None:
    decision = held_decision(state)
    assert (decision.allowed, decision.reason) == (allowed, reason)
    assert decision.reason in c.REASONS
    assert decision.http_status == (200 if allowed else 403)


@pytest.mark.parametrize(
    ("state", "by", "verdict", "reason"),
    [
        (b.ALLOWED_ONCE, "admin", "allow", "approval-allowed-once"),
        (b.ALLOWED_SESSION, "admin", "allow", "approval-allowed-session"),
        (b.DENIED, "admin", "deny", "approval-denied"),
        (b.TIMED_OUT, "timeout", "deny", "approval-timeout"),
    ],
)
def test_each_outcome_is_a_decision_with_who_decided(state: str, by: str, verdict: str, reason: str) -> None:
    approval, _ = b.ApprovalBook().hold("s-1", "a.test", 8080, "GET", 0, 30)
    event = decision_event(b.Approval(**{**approval.__dict__, "state": state, "decided_by": by}), 7.0)
    assert (event.verdict, event.reason, event.decided_by, event.source) == (verdict, reason, by, "approval")
    assert (event.session_id, event.host, event.port, event.method, event.time) == ("s-1", "a.test", 8080, "GET", 7.0)


@pytest.mark.parametrize(
    ("ask", "unlisted", "reason", "held"),
    [
        (True, True, c.HOST_NOT_ALLOWED, True),
        (False, True, c.HOST_NOT_ALLOWED, False),  # a DENY session is never held
        (True, False, c.HOST_NOT_ALLOWED, False),  # only the catch-all route asks
        (True, True, c.TOKEN_REVOKED, False),  # anything else that refused it stands
        (True, True, c.ALLOWED, False),
    ],
)
def test_which_checks_wait_for_an_operator(ask: bool, unlisted: bool, reason: str, held: bool) -> None:
    session = d.SessionView("s-1", True, "j", (), ask=ask)
    check = d.CheckInput("s-1", "GET", "a.test", {}, unlisted=unlisted)
    assert d.needs_approval(check, session, d.Decision(reason == c.ALLOWED, reason)) is held
    assert d.needs_approval(check, None, d.Decision(False, c.SESSION_UNKNOWN)) is False


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.applied: list[tuple[str, dict[str, object]]] = []
        self.recorded: list[b.Approval] = []
        self.fail = fail

    async def apply(self, session_id: str, rule: dict[str, object]) -> None:
        if self.fail:
            raise InvalidArgument("refused", field="rule")
        self.applied.append((session_id, rule))

    def desk(self, timeout: float = 60.0) -> ApprovalDesk:
        return ApprovalDesk(b.ApprovalBook(), timeout, self.apply, self.recorded.append, lambda sid: sid != "s-gone")


async def _held(desk: ApprovalDesk, count: int) -> b.Approval:
    """The one open approval, once the waiter tasks created before this call have run up to their wait."""
    await asyncio.sleep(0)
    (approval,) = desk.pending()
    assert approval.held == count
    return approval


def test_the_desk_releases_every_waiter_once_the_rule_is_applied() -> None:
    async def run() -> None:
        r = Recorder()
        desk = r.desk()
        waiters = [asyncio.create_task(desk.hold("s-1", "a.test", 80, "GET")) for _ in range(3)]
        approval = await _held(desk, 3)
        waiters[0].cancel()  # one client hung up: the others still wait
        closed = await desk.decide(approval.id, "allow_session", "admin")
        assert await asyncio.gather(*waiters[1:]) == [b.ALLOWED_SESSION, b.ALLOWED_SESSION]
        assert r.applied == [("s-1", {"host": "a.test", "ports": [80], "methods": [], **NO_INSPECTION})]
        assert [a.state for a in r.recorded] == [closed.state] == [b.ALLOWED_SESSION]
        desk.close()

    asyncio.run(run())


def test_a_rule_that_cannot_be_applied_leaves_the_approval_open() -> None:
    async def run() -> None:
        r = Recorder(fail=True)
        desk = r.desk()
        waiter = asyncio.create_task(desk.hold("s-1", "a.test", 80, "GET"))
        approval = await _held(desk, 1)
        with pytest.raises(InvalidArgument):
            await desk.decide(approval.id, "allow_session", "admin")
        assert desk.pending()[0].state == b.PENDING and not waiter.done()
        await desk.decide(approval.id, "deny", "admin")
        assert await waiter == b.DENIED
        desk.close()

    asyncio.run(run())


def test_nobody_deciding_times_out_and_is_recorded() -> None:
    async def run() -> None:
        r = Recorder()
        desk = r.desk(timeout=0.01)
        assert await desk.hold("s-1", "a.test", 80, "GET") == b.TIMED_OUT
        assert [(a.state, a.decided_by) for a in r.recorded] == [(b.TIMED_OUT, "timeout")]
        assert desk.pending() == []

    asyncio.run(run())


def test_an_ended_sessions_approvals_are_dropped_and_its_waiters_refused() -> None:
    async def run() -> None:
        desk = Recorder().desk()
        waiter = asyncio.create_task(desk.hold("s-gone", "a.test", 80, "GET"))
        await asyncio.sleep(0)  # the waiter opens its approval
        assert desk.pending() == []
        assert await waiter == b.DENIED
        desk.close()

    asyncio.run(run())


@pytest.mark.parametrize(
    ("ends", "comes_to_be_denied", "reason"),
    [(True, False, c.SESSION_UNKNOWN), (False, True, "destination-denied-by-policy"), (False, False, c.ALLOWED)],
)
def test_what_changed_while_a_request_was_held_still_counts(ends: bool, comes_to_be_denied: bool, reason: str) -> None:
    async def run() -> None:
        live, deny = {"s-1"}, set()
        book = b.ApprovalBook()
        desk = ApprovalDesk(book, 60.0, Recorder().apply, lambda a: None, live.__contains__, denied=deny.__contains__)
        check = d.CheckInput("s-1", "GET", "A.test.:80", {}, unlisted=True)
        waiter = asyncio.create_task(desk.held_check(check, d.Decision(False, c.HOST_NOT_ALLOWED)))
        approval = await _held(desk, 1)
        assert (approval.host, approval.port) == ("a.test", 80)
        if ends:
            live.clear()
        if comes_to_be_denied:
            deny.add("a.test")
        await desk.decide(approval.id, "allow_once", "admin")
        assert (await waiter).reason == reason
        desk.close()

    asyncio.run(run())


def test_a_session_has_a_bounded_number_of_requests_waiting() -> None:
    """Past `max_held` of a session's requests waiting, the next is refused at once; other sessions still wait,
    and a waiter that leaves (answered or hung up) makes room."""

    async def run() -> None:
        desk = ApprovalDesk(b.ApprovalBook(), 60.0, Recorder().apply, lambda a: None, lambda sid: True, max_held=2)
        refused = d.Decision(False, d.HOST_NOT_ALLOWED)

        def check(session_id: str, host: str) -> asyncio.Task[d.Decision]:
            held = d.CheckInput(session_id, "GET", host, {}, unlisted=True)
            return asyncio.create_task(desk.held_check(held, refused))

        first, second, other = check("s-1", "a.test"), check("s-1", "b.test"), check("s-2", "a.test")
        await asyncio.sleep(0)
        assert await check("s-1", "a.test") == refused
        assert len(desk.pending("s-1")) == 2 and len(desk.pending("s-2")) == 1
        first.cancel()
        await asyncio.sleep(0)
        third = check("s-1", "a.test")
        await asyncio.sleep(0)
        assert not third.done() and not second.done() and not other.done()
        desk.close()
        for task in (second, third, other):
            task.cancel()

    asyncio.run(run())


def test_other_sessions_approvals_neither_coalesce_nor_count() -> None:
    book = b.ApprovalBook(max_pending=2)
    for session_id in ("s-1", "s-2"):
        book.propose(session_id, RULE, "why", 0.0)
        book.hold(session_id, "a.test", 80, "GET", 0.0, 30.0)
    assert [a.held for a in book.pending("s-1") if a.kind == b.REQUEST] == [1]
    with pytest.raises(CapacityExhausted):
        book.hold("s-1", "b.test", 80, "GET", 0.0, 30.0)
    (request,) = [a for a in book.pending("s-2") if a.kind == b.REQUEST]
    book.claim(request.id, "deny")
    book.resolve(request.id, "deny", "admin")
    assert book.hold("s-2", "b.test", 80, "GET", 0.0, 30.0)[1]  # room again in s-2 alone
    assert len(book.drop_session("s-1")) == 2 and book.pending("s-1") == [] and len(book.pending()) == 2
