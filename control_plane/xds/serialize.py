"""Envoy config mappings (proto3 JSON names) to protobuf bytes, remembered by content.

Serializing goes through envoy-data-plane's generated classes, whose import and first use cost seconds of
CPU (pydantic builds a schema for each of hundreds of classes). A restarted control plane renders the same
configs it rendered before, so the bytes are remembered by the content of the mapping, in memory and in
`<state_dir>/envoy/rendered.db`: a restart serializes (and imports) nothing it has serialized before, and
the classes are only imported for a config never seen. The file is a cache: losing it costs time, not data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
KEEP_UNUSED_S = 7 * 86400  # rows not used for this long are dropped when the file is opened
_MEMORY_LIMIT = 50_000  # mappings kept in memory; beyond this the memory is cleared (the file still holds them)


class Serializer:
    """`serialize(type_url, config)` returns the bytes of the message; thread-safe."""

    def __init__(self) -> None:
        self._memory: dict[str, bytes] = {}
        self._file: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def attach(self, path: Path) -> None:
        """Remember serialized configs in the SQLite file at `path` too (created 0600 if missing)."""
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        path.chmod(0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")  # a cache: a row lost in a crash is serialized again
        db.execute("CREATE TABLE IF NOT EXISTS rendered (key TEXT PRIMARY KEY, body BLOB NOT NULL, used REAL NOT NULL)")
        db.execute("DELETE FROM rendered WHERE used < ?", (time.time() - KEEP_UNUSED_S,))
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = db

    def detach(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def serialize(self, type_url: str, config: dict[str, Any]) -> bytes:
        key = hashlib.sha256(f"{type_url}\n{json.dumps(config, sort_keys=True)}".encode()).hexdigest()
        with self._lock:
            found = self._memory.get(key) or self._load(key)
        if found is None:
            found = bytes(message_class(type_url).from_dict(config))
            with self._lock:
                self._store(key, found)
        with self._lock:
            if len(self._memory) >= _MEMORY_LIMIT:
                self._memory.clear()
            self._memory[key] = found
        return found

    def _load(self, key: str) -> bytes | None:
        if self._file is None:
            return None
        row = self._file.execute("SELECT body FROM rendered WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self._file.execute("UPDATE rendered SET used = ? WHERE key = ?", (time.time(), key))
        return bytes(row[0])

    def _store(self, key: str, body: bytes) -> None:
        if self._file is None:
            return
        try:
            self._file.execute("INSERT OR REPLACE INTO rendered VALUES (?, ?, ?)", (key, body, time.time()))
        except sqlite3.Error:
            log.exception("rendered config cache: a write failed (the config is still served)")


def message_class(type_url: str) -> Any:
    """envoy-data-plane's generated class for `type_url` (imports every module we pack into Any)."""
    from envoy_data_plane.message_pool import default_message_pool

    from control_plane.xds.types import register_message_types

    register_message_types()
    return default_message_pool.url_to_type[type_url]


SERIALIZER = Serializer()  # one per process: the bytes depend only on the mapping, whichever App asks
