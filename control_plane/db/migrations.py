"""Versioned schema: numbered steps, each applied once and in order, recorded in `schema_version`.

A step is a list of statements that run on SQLite and PostgreSQL alike (`{blob}` is the dialect's
bytes type). Add a step at the end; never change one that has shipped. All pending steps run in one
exclusive transaction: a replica that starts meanwhile waits, then finds them applied.
"""

from __future__ import annotations

import time

from control_plane.db.backend import Database
from control_plane.errors import Unavailable

STEPS: tuple[tuple[str, ...], ...] = (
    (  # 1: sessions, the global policy (one row), signing keys
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY, state TEXT NOT NULL, node_id TEXT NOT NULL, image TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL, egress TEXT NOT NULL,
            limits TEXT NOT NULL, labels TEXT NOT NULL, env TEXT NOT NULL, container_id TEXT NOT NULL,
            token_id TEXT NOT NULL, report_only INTEGER NOT NULL, idle_timeout_s INTEGER NOT NULL)""",
        "CREATE TABLE policy (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL)",
        """CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY, private_pem {blob} NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
    ),
    (  # 2: why a session failed
        "ALTER TABLE sessions ADD COLUMN failure_reason TEXT NOT NULL DEFAULT ''",
    ),
    (  # 3: what a request to a destination on no rule meets: DENY, or ASK (held for an operator's approval)
        "ALTER TABLE sessions ADD COLUMN on_unlisted TEXT NOT NULL DEFAULT 'DENY'",
    ),
)
LATEST = len(STEPS)
_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)
_RECORD = "INSERT INTO schema_version (version, applied_at) VALUES (:version, :applied_at)"


def migrate(db: Database) -> int:
    """Bring `db` to `LATEST`; returns the version it was at. Unavailable if it is at a newer version than
    this code knows (a newer control plane migrated it: run that one). Driver errors pass through."""
    with db.transaction(exclusive=True):
        db.execute(_VERSIONS)
        found = int(db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
        if found == 0:
            found = _adopt(db)
        if found > LATEST:
            raise Unavailable(
                f"the state database {db.name} has schema version {found}; this control plane knows up to {LATEST}"
            )
        for version in range(found + 1, LATEST + 1):
            for statement in STEPS[version - 1]:
                db.execute(statement.format(blob=db.blob))
            db.execute(_RECORD, {"version": version, "applied_at": time.time()})
    return found


def _adopt(db: Database) -> int:
    """A database written before versions were recorded (SQLite, by the code of before): record the
    version its tables match, so that only the later steps run."""
    columns = db.columns("sessions")
    if columns is None:
        return 0
    version = 2 if "failure_reason" in columns else 1
    for done in range(1, version + 1):
        db.execute(_RECORD, {"version": done, "applied_at": time.time()})
    return version
