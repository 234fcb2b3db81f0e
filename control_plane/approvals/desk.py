"""Holds requests on their approvals, closes approvals (an operator's decision, or the timeout), and tells
followers. An allow_session adds the rule live, ACK-confirmed, before the held requests are released."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from control_plane.approvals.book import DENIED, Approval, ApprovalBook
from control_plane.approvals.outcome import held_decision
from control_plane.authz.decide import CheckInput, Decision, destination
from control_plane.domain.rules import EgressRule
from control_plane.envoy_contract import POLICY_DENIED, SESSION_UNKNOWN
from control_plane.errors import CapacityExhausted

ApplyRule = Callable[[str, dict[str, object]], Awaitable[object]]  # session id, rule: added and ACKed
Record = Callable[[Approval], None]
FOLLOWER_BACKLOG = 1000


class ApprovalDesk:
    def __init__(
        self,
        book: ApprovalBook,
        timeout_s: float,
        apply_rule: ApplyRule,
        record: Record,
        live: Callable[[str], bool],
        clock: Callable[[], float] = time.time,
        denied: Callable[[str], bool] = lambda host: False,
    ) -> None:
        """`live(session_id)`: the session has not ended; `denied(host)`: the global policy denies the host."""
        self._book = book
        self.timeout_s = timeout_s
        self._apply_rule = apply_rule
        self._record = record
        self._live = live
        self._clock = clock
        self._denied = denied
        self._closed: dict[str, asyncio.Future[str]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._followers: set[asyncio.Queue[Approval]] = set()

    async def hold(self, session_id: str, host: str, port: int, method: str) -> str:
        """Wait on the destination's approval (opened if there is none); returns the state it closed in.

        CapacityExhausted if the session has too many open approvals."""
        approval, new = self._book.hold(session_id, host, port, method, self._clock(), self.timeout_s)
        if new:
            loop = asyncio.get_running_loop()
            self._timers[approval.id] = loop.call_later(self.timeout_s, self._expire, approval.id)
            self._announce(approval)
        closed = self._closed.setdefault(approval.id, asyncio.get_running_loop().create_future())
        # Shielded: one waiter that goes away (its client hung up) must not cancel the others'.
        return await asyncio.shield(closed)

    async def held_check(self, check: CheckInput, refused: Decision) -> Decision:
        """ext_authz's answer for a request no rule covers: what its approval decides. Past the session's
        bound of open approvals it is refused as a DENY session's would be."""
        target = destination(check)
        if target is None:
            return refused
        try:
            state = await self.hold(check.session_id, *target, check.method)
        except CapacityExhausted:
            return refused
        # Envoy keeps the route it chose when the request arrived: a session that ended meanwhile, or a
        # host the global policy came to deny, must not have the held request forwarded by that route.
        if not self._live(check.session_id):
            return Decision(False, SESSION_UNKNOWN)
        if self._denied(target[0]):
            return Decision(False, POLICY_DENIED)
        return held_decision(state)

    def propose(self, session_id: str, rule: EgressRule, reason: str) -> Approval:
        """A sandbox's proposal, pending until an operator decides it."""
        approval, new = self._book.propose(session_id, rule, reason, self._clock())
        if new:
            self._announce(approval)
        return approval

    async def decide(self, approval_id: str, decision: str, by: str) -> Approval:
        """Close an approval with `decision` (allow_once, allow_session, deny) by operator `by`."""
        approval = self._book.claim(approval_id, decision)
        if decision == "allow_session":
            try:
                await self._apply_rule(approval.session_id, approval.rule.to_dict())
            except BaseException:
                self._book.release(approval_id)
                if approval.expires_at and self._clock() >= approval.expires_at:
                    self._expire(approval_id)
                raise
        return self._close(self._book.resolve(approval_id, decision, by))

    def pending(self, session_id: str = "") -> list[Approval]:
        """Open approvals, oldest first; those of ended sessions are dropped here."""
        for approval in self._book.pending(session_id):
            if not self._live(approval.session_id):
                self._drop(approval.session_id)
        return self._book.pending(session_id)

    async def follow(self) -> AsyncIterator[Approval]:
        """The open approvals, then every approval as it opens or closes."""
        queue: asyncio.Queue[Approval] = asyncio.Queue()
        self._followers.add(queue)
        try:
            for approval in self.pending():
                yield approval
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _expire(self, approval_id: str) -> None:
        closed = self._book.expire(approval_id)
        if closed is not None:  # None: decided meanwhile, or an allow_session is being applied
            self._close(closed)

    def _drop(self, session_id: str) -> None:
        for approval in self._book.drop_session(session_id):
            timer = self._timers.pop(approval.id, None)
            if timer:
                timer.cancel()
            waiting = self._closed.pop(approval.id, None)
            if waiting and not waiting.done():
                waiting.set_result(DENIED)

    def _close(self, approval: Approval) -> Approval:
        timer = self._timers.pop(approval.id, None)
        if timer:
            timer.cancel()
        waiting = self._closed.pop(approval.id, None)
        if waiting and not waiting.done():
            waiting.set_result(approval.state)
        self._record(approval)
        self._announce(approval)
        return approval

    def _announce(self, approval: Approval) -> None:
        for queue in self._followers:
            if queue.qsize() < FOLLOWER_BACKLOG:  # a slow follower loses events rather than growing
                queue.put_nowait(approval)
