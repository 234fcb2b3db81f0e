"""Secrets at rest: one file per secret under `<state_dir>/secrets/` (0600, in a 0700 directory), its value
encrypted (AES-256-GCM, the name as associated data) with a key kept in its own file, apart from the database.

Only `injections` ever decrypts, for the xDS renderer; nothing else returns or logs a value.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from control_plane.credentials.secret import PLACEHOLDER_PREFIX, Injection, Secret, check_name, check_new, header_value
from control_plane.errors import NotFound
from control_plane.secrets import write_private


class SecretVault:
    def __init__(self, directory: Path, key_file: Path, clock: Callable[[], float] = time.time) -> None:
        self._dir = directory
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._dir.chmod(0o700)
        self._aead = AESGCM(_load_or_create_key(key_file))
        self._clock = clock
        self._plain: dict[str, Injection] | None = None  # decrypted header values, built on first use

    def put(self, name: str, value: object, header: object, template: object) -> Secret:
        """Store (or replace) a secret; its placeholder stays the same across replacements."""
        check_name(name)
        value, header, template = check_new(value, header, template)
        old = self._find(name)
        placeholder = old.placeholder if old else PLACEHOLDER_PREFIX + secrets.token_hex(16)
        meta = Secret(name, header, template, self._clock(), placeholder)
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), name.encode())
        doc = {**meta.to_dict(), "created_at": meta.created_at, "nonce": nonce.hex(), "sealed": sealed.hex()}
        write_private(self._path(name), json.dumps(doc).encode())
        self._plain = None
        return meta

    def get(self, name: str) -> Secret:
        found = self._find(check_name(name))
        if found is None:
            raise NotFound(f"no secret named {name!r}", field="name")
        return found

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def all(self) -> list[Secret]:
        return [self.get(p.stem) for p in sorted(self._dir.glob("*.json"))]

    def delete(self, name: str) -> None:
        self.get(name)
        self._path(name).unlink()
        self._plain = None

    def injections(self) -> dict[str, Injection]:
        """Each secret's name -> its header, the header's value and its placeholder: for Envoy's config only."""
        if self._plain is None:
            self._plain = {
                s.name: Injection(s.header, header_value(s.format, self._open(s.name)), s.placeholder)
                for s in self.all()
            }
        return self._plain

    def _open(self, name: str) -> str:
        doc = json.loads(self._path(name).read_text())
        return self._aead.decrypt(bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["sealed"]), name.encode()).decode()

    def _find(self, name: str) -> Secret | None:
        path = self._path(name)
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        return Secret(doc["name"], doc["header"], doc["format"], doc["created_at"], doc["placeholder"])

    def _path(self, name: str) -> Path:
        return self._dir / f"{name}.json"


def _load_or_create_key(path: Path) -> bytes:
    if path.exists():
        path.chmod(0o600)
        return bytes.fromhex(path.read_text().strip())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    write_private(path, key.hex().encode())
    return key
