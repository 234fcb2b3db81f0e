"""Live edits of a session's allowlist and of the global policy. Each edit is validated whole, stored,
then pushed; only the touched routes are re-rendered, so no connection of another session is disturbed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from control_plane.domain.policy import Policy, parse_policy
from control_plane.domain.rules import EgressRule, merge_rules, normalize_host, parse_rules
from control_plane.domain.session import Session
from control_plane.errors import NotFound, Rejected
from control_plane.sessions.registry import SessionRegistry
from control_plane.store import Store
from control_plane.xds.publisher import ConfigPublisher, Expected


class EgressEditor:
    def __init__(
        self, registry: SessionRegistry, store: Store, publisher: ConfigPublisher, allow_broad: bool = False
    ) -> None:
        self._registry = registry
        self._store = store
        self._publisher = publisher
        self._allow_broad = allow_broad
        self._policy = store.policy()

    def policy(self) -> Policy:
        return self._policy

    def rules(self, session_id: str) -> tuple[EgressRule, ...]:
        return self._registry.get(session_id).egress

    async def replace(self, session_id: str, raw: Sequence[dict[str, object]], wait: float | None) -> Session:
        rules = parse_rules(raw, "egress", allow_broad=self._allow_broad)
        return await self._apply(self._registry.get(session_id), rules, wait)

    async def add(self, session_id: str, raw: dict[str, object], wait: float | None) -> Session:
        (rule,) = parse_rules([raw], "rule", allow_broad=self._allow_broad)
        session = self._registry.get(session_id)
        return await self._apply(session, merge_rules([*session.egress, rule]), wait)

    async def remove(self, session_id: str, host: str, wait: float | None) -> Session:
        name = normalize_host(host, "host", allow_broad=True)
        session = self._registry.get(session_id)
        if not any(r.host == name for r in session.egress):
            raise NotFound(f"session {session_id} has no rule for {name}", field="host")
        return await self._apply(session, tuple(r for r in session.egress if r.host != name), wait)

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
        policy = parse_policy(raw, allow_broad=self._allow_broad)
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
