"""Signing keys. The newest signs; every key young enough to have signed a live token still verifies,
so a rotation never invalidates a session (no token outlives the maximum TTL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from control_plane.domain import tokens
from control_plane.domain.tokens import SigningKey
from control_plane.store import Store


def ensure_signing_key(store: Store, now: float) -> None:
    """Give a new store its first signing key (created at `now`, seconds since the epoch); an existing key stays."""
    if not store.keys():
        store.add_key(tokens.generate_key(now)).result()  # at startup: blocking is fine


class Keyring:
    """The store's signing keys, newest first. The store must hold one (`ensure_signing_key`): ValueError if not."""

    def __init__(self, store: Store, clock: Callable[[], float], max_token_age_s: float) -> None:
        self._store = store
        self._clock = clock
        self._max_age = max_token_age_s
        self._keys = store.keys()
        if not self._keys:
            raise ValueError("the store holds no signing key; call ensure_signing_key first")

    @property
    def current(self) -> SigningKey:
        """The key that signs new tokens."""
        return self._keys[0]

    async def rotate(self) -> SigningKey:
        """A new key signs from now on, once stored (Unavailable when the store cannot write it)."""
        key = tokens.generate_key(self._clock())
        await self._store.add_key(key)
        self._keys = sorted([key, *self._keys], key=lambda k: k.created_at, reverse=True)
        return self.current

    def verifying(self) -> list[SigningKey]:
        """The current key, and each older key whose successor is younger than the longest token life."""
        horizon = self._clock() - self._max_age - 60
        keep = [self._keys[0]]
        for older, newer in zip(self._keys[1:], self._keys, strict=False):
            if newer.created_at < horizon:
                break
            keep.append(older)
        return keep

    def jwks(self) -> dict[str, Any]:
        """The verifying keys as a JSON Web Key Set, as Envoy's jwt_authn reads it."""
        return tokens.jwks(self.verifying())
