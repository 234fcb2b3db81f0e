"""Signing keys: the newest signs, the newest two verify, so rotation never breaks a live session."""

from __future__ import annotations

from typing import Any

from control_plane.domain import tokens
from control_plane.domain.tokens import SigningKey
from control_plane.store import Store

VERIFYING_KEYS = 2


class Keyring:
    def __init__(self, store: Store, now: float) -> None:
        self._store = store
        if not store.keys():
            store.add_key(tokens.generate_key(now))
        self._keys = store.keys()

    @property
    def current(self) -> SigningKey:
        return self._keys[0]

    def rotate(self, now: float) -> None:
        self._store.add_key(tokens.generate_key(now))
        self._keys = self._store.keys()

    def jwks(self) -> dict[str, Any]:
        return tokens.jwks(self._keys[:VERIFYING_KEYS])
