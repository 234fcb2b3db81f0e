"""Live edits of a session's allowlist and of the global policy. Each edit is validated whole, stored,
then pushed; only the touched routes are re-rendered, so no connection of another session is disturbed."""

from __future__ import annotations

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
    parse_rules,
)
from control_plane.domain.session import Session
from control_plane.errors import InvalidArgument, NotFound, Rejected
from control_plane.sessions.registry import SessionRegistry
from control_plane.store import Store
from control_plane.xds.publisher import ConfigPublisher, Expected


class EgressEditor:
    def __init__(
        self,
        registry: SessionRegistry,
        store: Store,
        publisher: ConfigPublisher,
        allow_broad: bool = False,
        limits: RuleLimits = DEFAULT_LIMITS,
        secret_exists: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self._secret_exists = secret_exists
        self._registry = registry
        self._store = store
        self._publisher = publisher
        self._allow_broad = allow_broad
        self._limits = limits
        self._policy = store.policy()

    def policy(self) -> Policy:
        return self._policy

    def rules(self, session_id: str) -> tuple[EgressRule, ...]:
        return self._registry.get(session_id).egress

    async def replace(self, session_id: str, raw: Sequence[dict[str, object]], wait: float | None) -> Session:
        rules = parse_rules(raw, "egress", allow_broad=self._allow_broad, limits=self._limits)
        self._check_size(rules)
        return await self._apply(self._registry.get(session_id), rules, wait)

    async def add(self, session_id: str, raw: dict[str, object], wait: float | None) -> Session:
        (rule,) = parse_rules([raw], "rule", allow_broad=self._allow_broad, limits=self._limits)
        check_credentials([rule], self._secret_exists, "rule[0]")
        session = self._registry.get(session_id)
        rules = merge_rules([*session.egress, rule])
        self._check_size(rules)
        return await self._apply(session, rules, wait)

    async def remove(self, session_id: str, host: str, wait: float | None) -> Session:
        name = canonical_host(host, "host")
        session = self._registry.get(session_id)
        if not any(r.host == name for r in session.egress):
            raise NotFound(f"session {session_id} has no rule for {name}", field="host")
        return await self._apply(session, tuple(r for r in session.egress if r.host != name), wait)

    def _check_size(self, rules: tuple[EgressRule, ...]) -> None:
        """Only writes that add are checked: removing a rule is always possible, whatever the limits.
        (Nor is a secret checked on removal: a rule may outlive nothing, `SecretService` refuses that.)"""
        check_credentials(rules, self._secret_exists)
        if problem := route_size_problem(rules, self._policy, self._limits):
            raise InvalidArgument(problem, field="egress")

    async def _apply(self, session: Session, rules: tuple[EgressRule, ...], wait: float | None) -> Session:
        before = session
        updated = self._registry.save(session.with_egress(rules))
        expected = self._publisher.put_routes(updated)
        if wait is not None:
            try:
                await self._publisher.wait(expected, wait)
            except Rejected:
                self._restore(before)
                raise
        return updated

    def _restore(self, before: Session) -> None:
        """Envoy refused the change: keep the last good rules, in the store and in the cache."""
        if self._registry.find(before.id) is not None:
            self._publisher.put_routes(self._registry.save(before))

    async def put_policy(self, raw: Mapping[str, object], wait: float | None) -> Policy:
        policy = parse_policy(raw, allow_broad=self._allow_broad, limits=self._limits)
        self._check_fits(policy)
        previous, self._policy = self._policy, policy
        self._store.put_policy(policy)
        expected: Expected = self._publisher.put_routes(*self._registry.all())
        if wait is not None:
            try:
                await self._publisher.wait(expected, wait)
            except Rejected:
                self._policy = previous
                self._store.put_policy(previous)
                self._publisher.put_routes(*self._registry.all())
                raise
        return policy

    def _check_fits(self, policy: Policy) -> None:
        check_credentials(policy.default_egress, self._secret_exists, "default_egress")
        """A policy's deny list is part of every session's routes: it must leave each of them within the limits."""
        if problem := route_size_problem(policy.default_egress, policy, self._limits):
            raise InvalidArgument(f"a new session with only the default rules: {problem}", field="default_egress")
        for session in self._registry.all():
            problem = route_size_problem(session.egress, policy, self._limits)
            if problem and session_domains(session.egress, policy) > session_domains(session.egress, self._policy):
                raise InvalidArgument(f"with this deny list, session {session.id}: {problem}", field="deny")
