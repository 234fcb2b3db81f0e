"""Keyring: the newest key signs; an older key verifies for as long as a token it signed can live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from control_plane.domain import tokens
from control_plane.sessions.keyring import Keyring, ensure_signing_key
from control_plane.store import Store
from tests.support.core import Clock

MAX_AGE = 3600.0


def test_a_new_store_gets_one_key_and_a_reopened_one_keeps_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "sandgate.db")
    with pytest.raises(ValueError, match="no signing key"):
        Keyring(store, Clock(), MAX_AGE)
    ensure_signing_key(store, 1.0)
    first = Keyring(store, Clock(), MAX_AGE).current
    ensure_signing_key(store, 2.0)
    assert Keyring(store, Clock(), MAX_AGE).current == first and len(store.keys()) == 1
    store.close()


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "sandgate.db")
    yield opened
    opened.close()


def keyring_at(store: Store, clock: Clock) -> Keyring:
    ensure_signing_key(store, clock())
    return Keyring(store, clock, MAX_AGE)


def test_rotation_signs_with_the_new_key_and_verifies_with_both_until_no_old_token_can_live(store: Store) -> None:
    clock = Clock(1_000_000.0)
    keyring = keyring_at(store, clock)
    old = keyring.current
    clock.now += 10
    new = asyncio.run(keyring.rotate())
    assert keyring.current == new != old
    assert [k.kid for k in keyring.verifying()] == [new.kid, old.kid]
    assert {k["kid"] for k in keyring.jwks()["keys"]} == {new.kid, old.kid}
    clock.now = new.created_at + MAX_AGE + 60  # the last token the old key signed has just expired
    assert [k.kid for k in keyring.verifying()] == [new.kid, old.kid]
    clock.now += 1
    assert [k.kid for k in keyring.verifying()] == [new.kid]


def test_a_token_names_the_key_that_signed_it(store: Store) -> None:
    clock = Clock(1_000_000.0)
    keyring = keyring_at(store, clock)
    token = tokens.mint(keyring.current, "s-0123456789abcdef", "jti", clock.now, clock.now + 60)
    assert jwt.get_unverified_header(token)["kid"] == keyring.current.kid
