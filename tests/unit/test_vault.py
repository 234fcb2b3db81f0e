"""Secrets at rest: encrypted, 0600, apart from their key; values never come back out but as header values."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from control_plane.credentials.vault import SecretVault
from control_plane.errors import InvalidArgument, NotFound

VALUE = "sk-live-0123456789abcdef"


def test_a_secret_is_encrypted_and_private(tmp_path: Path) -> None:
    vault = SecretVault(tmp_path / "secrets", tmp_path / "keys" / "secrets.key")
    meta = vault.put("api", VALUE, "Authorization", "Bearer {value}")
    stored = (tmp_path / "secrets" / "api.json").read_bytes()
    assert VALUE.encode() not in stored and VALUE not in json.dumps(meta.to_dict())
    assert stat.S_IMODE((tmp_path / "secrets" / "api.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys" / "secrets.key").stat().st_mode) == 0o600
    injection = SecretVault(tmp_path / "secrets", tmp_path / "keys" / "secrets.key").injections()["api"]
    assert (injection.header, injection.value, injection.placeholder) == (
        "Authorization", f"Bearer {VALUE}", meta.placeholder
    )  # fmt: skip


def test_another_key_cannot_open_it(tmp_path: Path) -> None:
    SecretVault(tmp_path / "secrets", tmp_path / "a.key").put("api", VALUE, "Authorization", "{value}")
    with pytest.raises(InvalidTag):
        SecretVault(tmp_path / "secrets", tmp_path / "b.key").injections()


def test_the_placeholder_survives_a_new_value(tmp_path: Path) -> None:
    vault = SecretVault(tmp_path / "s", tmp_path / "k")
    first = vault.put("api", "one", "X-Api-Key", "{value}")
    assert vault.put("api", "two", "X-Api-Key", "{value}").placeholder == first.placeholder
    assert vault.injections()["api"].value == "two"
    vault.delete("api")
    with pytest.raises(NotFound):
        vault.get("api")


@pytest.mark.parametrize(
    ("value", "header", "template", "field"),
    [
        ("", "Authorization", "{value}", "value"),
        ("s3cr3t\nv4lue", "Authorization", "{value}", "value"),
        ("s3cr3t-v4lue", "Host", "{value}", "header"),
        ("s3cr3t-v4lue", "bad header", "{value}", "header"),
        ("s3cr3t-v4lue", "Authorization", "Bearer", "format"),
        ("s3cr3t-v4lue", "Authorization", "Bearer {value}\r", "format"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_the_value(
    tmp_path: Path, value: str, header: str, template: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        SecretVault(tmp_path / "s", tmp_path / "k").put("api", value, header, template)
    assert err.value.field == field
    assert not value or value not in str(err.value)
