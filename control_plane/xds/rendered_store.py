"""Serialized Envoy configs kept in `<state_dir>/envoy/rendered.db` (SQLite), for `xds/serialize.py`.

A cache: `synchronous=OFF`, a row lost in a crash is serialized again; rows unused for KEEP_UNUSED_S are
dropped when the file is opened. Write failures are logged, never raised: the config is still served.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)
KEEP_UNUSED_S = 7 * 86400
_PUT = "INSERT INTO rendered (key, body, used) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET used = excluded.used"


class RenderedFile:
    """The store of `Serializer.attach`; its callers hold the serializer's lock, one call at a time."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS rendered (key TEXT PRIMARY KEY, body BLOB NOT NULL, used REAL NOT NULL)"
        )
        self._db.execute("DELETE FROM rendered WHERE used < ?", (time.time() - KEEP_UNUSED_S,))

    def get(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT body FROM rendered WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self._db.execute("UPDATE rendered SET used = ? WHERE key = ?", (time.time(), key))
        return bytes(row[0])

    def put(self, key: str, body: bytes) -> None:
        try:
            self._db.execute(_PUT, (key, body, time.time()))
        except sqlite3.Error:
            log.exception("rendered config cache: a write failed (the config is still served)")

    def close(self) -> None:
        self._db.close()
