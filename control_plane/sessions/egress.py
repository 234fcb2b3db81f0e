"""Live edits of a session's allowlist and of the global policy. Each edit is validated whole, stored,
then pushed; only the touched routes are re-rendered, so no connection of another session is disturbed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

from control_plane.domain.expansion import route_size_problem, session_domains
from control_plane.domain.hostnames import canonical_host
from control_plane.domain.policy import Policy, parse_policy
from control_plane.domain.rules import (
    DEFAULT_LIMITS,
    EgressRule,
    RuleLimits,
    check_credentials,
    merge_rules,
    parse_rule,
    parse_rules,
)
from control_plane.domain.session import Session
from control_plane.errors import FailedPrecondition, InvalidArgument, NotFound, Rejected
from control_plane.sessions.registry import SessionRegistry
from control_plane.store import Store
from control_plane.xds.publisher import ConfigPublisher, Expected


class EgressEditor:
    """Live edits of one session's rules and of the global policy. Each write is validated whole (InvalidArgument
    naming the field), stored, then pushed; with `wait` (seconds) it returns once every Envoy of the node applied
    it, raising NotApplied when time runs out (the write is kept) or Rejected when Envoy refused it (the write
    is undone, in the store and the cache). NotFound for an unknown session."""

    def __init__(
        self,
        registry: SessionRegistry,
        store: Store,
        publisher: ConfigPublisher,
        allow_broad: bool = False,
        limits: RuleLimits = DEFAULT_LIMITS,
        ack_timer: Callable[[str, float], None] | None = None,
        secret_exists: Callable[[str], bool] = lambda name: False,
    ) -> None:
        """`ack_timer(write, seconds)` is told how long a waited write ("egress", "policy") took to be ACKed;
        `secret_exists(name)` whether a rule may name that secret as its credential."""
        self._ack_timer = ack_timer
        self._secret_exists = secret_exists
        self._registry = registry
        self._store = store
        self._publisher = publisher
        self._allow_broad = allow_broad
        self._limits = limits
        self._policy = store.policy()
        self._editing = asyncio.Lock()  # edits wait for the store: one read-change-write at a time

    def policy(self) -> Policy:
        """The global policy in force."""
        return self._policy

    @property
    def limits(self) -> RuleLimits:
        """The rule limits every write is checked against (the admin API's models publish them)."""
        return self._limits

    def rules(self, session_id: str) -> tuple[EgressRule, ...]:
        """The session's rules; NotFound if there is no such session."""
        return self._registry.get(session_id).egress

    async def replace(self, session_id: str, raw: Sequence[dict[str, object]], wait: float | None) -> Session:
        """Replace all of the session's rules with `raw`; the updated session."""
        rules = parse_rules(raw, "egress", allow_broad=self._allow_broad, limits=self._limits)
        self._check_size(rules)
        return await self._apply(session_id, lambda _: rules, wait)

    def parse_rule(self, raw: dict[str, object]) -> EgressRule:
        """One rule, validated as an added one would be; InvalidArgument naming its field otherwise."""
        return parse_rule(
            str(raw.get("host", "")), _ints(raw.get("ports") or []), _strs(raw.get("methods") or []), field="",
            paths=_strs(raw.get("paths") or [], "paths"), inspect=raw.get("inspect") is True,
            credential=str(raw.get("credential") or ""), allow_broad=self._allow_broad, limits=self._limits,
        )  # fmt: skip

    async def add(self, session_id: str, raw: dict[str, object], wait: float | None) -> Session:
        """Add one rule (merged with one for the same host); the updated session."""
        rule = self.parse_rule(raw)
        check_credentials([rule], self._secret_exists, field="")

        def added(session: Session) -> tuple[EgressRule, ...]:
            self._check_size((rule,))
            rules = merge_rules([*session.egress, rule])
            if problem := route_size_problem(rules, self._policy, self._limits):  # the rule is fine; the set is full
                raise FailedPrecondition(f"session {session_id} cannot take this rule: {problem}", field="egress")
            return rules

        return await self._apply(session_id, added, wait)

    async def remove(self, session_id: str, host: str, wait: float | None) -> Session:
        """Remove the rule for `host`; NotFound (field "host") if the session has none."""
        name = canonical_host(host, "host")

        def removed(session: Session) -> tuple[EgressRule, ...]:
            if not any(r.host == name for r in session.egress):
                raise NotFound(f"session {session_id} has no rule for {name}", field="host")
            return tuple(r for r in session.egress if r.host != name)

        return await self._apply(session_id, removed, wait)

    def _check_size(self, rules: tuple[EgressRule, ...]) -> None:
        """Only writes that add are checked: removing a rule is always possible, whatever the limits.
        (Nor is a secret checked on removal: a rule may outlive nothing, `SecretService` refuses that.)"""
        check_credentials(rules, self._secret_exists)
        if problem := route_size_problem(rules, self._policy, self._limits):
            raise InvalidArgument(problem, field="egress")

    async def _apply(
        self, session_id: str, change: Callable[[Session], tuple[EgressRule, ...]], wait: float | None
    ) -> Session:
        """Read, change and store under one lock: of two edits at once, the second sees the first's rules."""
        async with self._editing:
            before = self._registry.get(session_id)
            updated = await self._registry.save(before.with_egress(change(before)))
        expected = self._publisher.put_routes(updated)
        if wait is not None:
            try:
                await self._wait("egress", expected, wait)
            except Rejected:
                await self._restore(before)
                raise
        return updated

    async def _wait(self, write: str, expected: Expected, timeout: float) -> None:
        started = time.monotonic()
        await self._publisher.wait(expected, timeout)
        if self._ack_timer:
            self._ack_timer(write, time.monotonic() - started)

    async def _restore(self, before: Session) -> None:
        """Envoy refused the change: keep the last good rules, in the store and in the cache."""
        async with self._editing:
            if self._registry.find(before.id) is not None:
                self._publisher.put_routes(await self._registry.save(before))

    async def put_policy(self, raw: Mapping[str, object], wait: float | None) -> Policy:
        """Replace the global policy (default rules for new sessions, and the deny list every session's routes
        carry); InvalidArgument if its deny list would push a session's routes over the limits."""
        policy = parse_policy(raw, allow_broad=self._allow_broad, limits=self._limits)
        async with self._editing:
            self._check_fits(policy)
            previous = self._policy
            await self._store.put_policy(policy)
            self._policy = policy
        expected: Expected = self._publisher.put_routes(*self._registry.all())
        if wait is not None:
            try:
                await self._wait("policy", expected, wait)
            except Rejected:
                async with self._editing:
                    await self._store.put_policy(previous)
                    self._policy = previous
                self._publisher.put_routes(*self._registry.all())
                raise
        return policy

    def _check_fits(self, policy: Policy) -> None:
        """A policy's deny list is part of every session's routes: it must leave each of them within the limits;
        its default rules may only name stored secrets."""
        check_credentials(policy.default_egress, self._secret_exists, "default_egress")
        if problem := route_size_problem(policy.default_egress, policy, self._limits):
            raise InvalidArgument(f"a new session with only the default rules: {problem}", field="default_egress")
        for session in self._registry.all():
            problem = route_size_problem(session.egress, policy, self._limits)
            if problem and session_domains(session.egress, policy) > session_domains(session.egress, self._policy):
                raise FailedPrecondition(f"with this deny list, session {session.id}: {problem}", field="deny")


def _ints(value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise InvalidArgument("must be a list of integers", field="ports")
    return value


def _strs(value: object, field: str = "methods") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("must be a list of strings", field=field)
    return value
