"""Signing keys. The newest signs; every key young enough to have signed a live token still verifies,
so a rotation never invalidates a session (no token outlives the maximum TTL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from control_plane.domain import tokens
from control_plane.domain.tokens import SigningKey
from control_plane.store import Store


class Keyring:
    def __init__(self, store: Store, clock: Callable[[], float], max_token_age_s: float) -> None:
        self._store = store
        self._clock = clock
        self._max_age = max_token_age_s
        if not store.keys():  # at startup: blocking is fine
            store.add_key(tokens.generate_key(clock())).result()
        self._keys = store.keys()

    @property
    def current(self) -> SigningKey:
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
        return tokens.jwks(self.verifying())
