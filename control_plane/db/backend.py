"""The one place that knows SQLite from PostgreSQL: connecting by URL, parameters, locking, errors.

Everything above it writes one SQL for both: named parameters (`:name`), named columns, portable
upserts (`INSERT ... ON CONFLICT ... DO UPDATE`), and the column types `{blob}` and DOUBLE PRECISION.
A `Database` is used by one thread at a time (the store's own); it is not thread-safe.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from control_plane.db.url import POSTGRESQL, SQLITE, describe, kind_of

_MIGRATION_LOCK = 0x5A6E_6761_7465  # PostgreSQL advisory lock held while a replica migrates ("Sngate")
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
Params = Mapping[str, object]


def driver_errors(kind: str) -> tuple[type[Exception], ...]:
    """What the driver of `kind` raises when the database cannot be reached, read or written."""
    if kind == SQLITE:
        return (sqlite3.OperationalError,)
    import psycopg

    return (psycopg.OperationalError, psycopg.InternalError)


class Database:
    """One connection to the database at `url` (see `kind_of`). Raises `driver_errors(kind)` when it cannot
    be reached or written; a PostgreSQL connection that broke is opened again on the next call."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = kind_of(url)
        self.name = describe(url)
        self.blob = "BLOB" if self.kind == SQLITE else "BYTEA"
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        if self.kind == SQLITE:
            path = Path(self.url[len("sqlite://") :])
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            path.chmod(0o600)  # sessions and signing keys: readable by root only (WAL files inherit the mode)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it is acknowledged
            self._conn.execute("PRAGMA busy_timeout=5000")
        else:
            import psycopg

            # A peer that vanished (no RST) fails a call within about 30 s instead of holding the store.
            self._conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=10, keepalives=1, keepalives_idle=10,
                keepalives_interval=5, keepalives_count=3, tcp_user_timeout=30_000,
            )  # fmt: skip

    def _ready(self) -> Any:
        if self.kind == POSTGRESQL and (self._conn.closed or self._conn.broken):
            self._connect()
        return self._conn

    def execute(self, sql: str, params: Params | Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with `:name` parameters; returns its rows (none for a statement without)."""
        cursor = self._ready().execute(self._sql(sql), params)
        return list(cursor.fetchall()) if cursor.description else []

    def columns(self, table: str) -> set[str] | None:
        """The columns of `table` (a name from our own code, never from input), or None when there is no such table."""
        if self.kind == SQLITE:
            tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = :name"
        else:
            tables = (
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name = :name"
            )
        if not self.execute(tables, {"name": table}):
            return None
        cursor = self._ready().execute(f"SELECT * FROM {table} WHERE 1 = 0")
        return {d[0] for d in cursor.description}

    @contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[Database]:
        """Commit on leaving, roll back on an exception. `exclusive`: no other connection runs an
        exclusive transaction (a migration) at the same time, also in another process or replica."""
        conn = self._ready()
        if self.kind == SQLITE:
            conn.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write
            try:
                yield self
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:  # an error, also in COMMIT; SQLite may have rolled back already
                    conn.execute("ROLLBACK")
        else:
            with conn.transaction():
                if exclusive:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                yield self

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the database)."""
        if self._conn is not None:
            self._conn.close()

    def _sql(self, sql: str) -> str:
        return sql if self.kind == SQLITE else _PARAM.sub(r"%(\1)s", sql)
