"""Signing-key rotation: a new key signs from now on; Envoy is given the new key set."""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.sessions.keyring import Keyring
from control_plane.sessions.registry import SessionRegistry
from control_plane.xds.publisher import ConfigPublisher


@dataclass(frozen=True)
class KeyRotation:
    keyring: Keyring
    registry: SessionRegistry
    publisher: ConfigPublisher

    async def rotate(self, wait: float | None) -> dict[str, object]:
        """Tokens already issued stay valid: their key stays in the set Envoy verifies with."""
        key = await self.keyring.rotate()
        expected = self.publisher.put_listeners(*self.registry.all())
        if wait is not None:
            await self.publisher.wait(expected, wait)
        return {"signing_key": key.kid, "verifying_keys": [k.kid for k in self.keyring.verifying()]}
