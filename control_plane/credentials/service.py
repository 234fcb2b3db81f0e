"""Secret writes, live: a secret's sessions get its new value on their next request (routes re-rendered and,
with `wait`, ACKed); a secret that a rule still names cannot be deleted."""

from __future__ import annotations

from collections.abc import Callable

from control_plane.credentials.secret import Secret
from control_plane.credentials.vault import SecretVault
from control_plane.domain.policy import Policy
from control_plane.domain.session import Session
from control_plane.errors import FailedPrecondition
from control_plane.sessions.registry import SessionRegistry
from control_plane.xds.publisher import ConfigPublisher


class SecretService:
    def __init__(
        self,
        vault: SecretVault,
        registry: SessionRegistry,
        publisher: ConfigPublisher,
        policy: Callable[[], Policy],
    ) -> None:
        self.vault = vault
        self._registry = registry
        self._publisher = publisher
        self._policy = policy

    async def put(self, name: str, body: dict[str, object], wait: float | None) -> Secret:
        """Store or replace; `body` holds `value`, `header` (default Authorization), `format` (default `{value}`)."""
        header, template = body.get("header", "Authorization"), body.get("format", "{value}")
        secret = self.vault.put(name, body.get("value"), header, template)
        await self._republish(self._users(name), wait)
        return secret

    async def delete(self, name: str) -> None:
        self.vault.get(name)
        users = [s.id for s in self._users(name)]
        if users or any(r.credential == name for r in self._policy().default_egress):
            where = f"sessions {', '.join(users)}" if users else "the policy's default rules"
            raise FailedPrecondition(f"secret {name!r} is named by {where}; remove it from their rules first")
        self.vault.delete(name)

    def _users(self, name: str) -> list[Session]:
        return [s for s in self._registry.all() if any(r.credential == name for r in s.egress)]

    async def _republish(self, sessions: list[Session], wait: float | None) -> None:
        if not sessions:
            return
        expected = self._publisher.put_routes(*sessions)
        if wait is not None:
            await self._publisher.wait(expected, wait)
