"""SQLite persistence for sessions and signing keys.

Plain SQL with JSON text columns, nothing SQLite-specific beyond the connection setup, so that a
Postgres backend can implement the same methods. Every write commits before it returns.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule, rule_from_dict
from control_plane.domain.session import Limits, Session, State
from control_plane.domain.tokens import SigningKey
from control_plane.errors import Unavailable

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    node_id TEXT NOT NULL,
    image TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    egress TEXT NOT NULL,
    limits TEXT NOT NULL,
    labels TEXT NOT NULL,
    env TEXT NOT NULL,
    container_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    report_only INTEGER NOT NULL,
    idle_timeout_s INTEGER NOT NULL,
    failure_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    private_pem BLOB NOT NULL,
    created_at REAL NOT NULL
);
"""


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        path.chmod(0o600)  # sessions and signing keys: readable by root only (WAL files inherit the mode)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "failure_reason" not in columns:  # a database from before failure reasons were kept
            self._db.execute("ALTER TABLE sessions ADD COLUMN failure_reason TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. A database that cannot be written (disk full, I/O error, locked) is
        Unavailable to callers; SQLite's own words go to the log only."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            log.error("state database %s: %s", self._path, exc)
            raise Unavailable("the control plane cannot write its state database; see its log") from None

    def put_session(self, s: Session) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    s.id, s.state.value, s.node_id, s.image, s.created_at, s.expires_at,
                    json.dumps([r.to_dict() for r in s.egress]),
                    json.dumps([s.limits.memory_mb, s.limits.cpus, s.limits.pids]),
                    json.dumps(dict(s.labels)), json.dumps(dict(s.env)), s.container_id, s.token_id, int(s.report_only),
                    s.idle_timeout_s, s.failure_reason,
                ),
            )  # fmt: skip

    def delete_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def sessions(self) -> list[Session]:
        rows = self._db.execute("SELECT * FROM sessions ORDER BY created_at, id").fetchall()
        return [_session_from_row(row) for row in rows]

    def put_policy(self, policy: Policy) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO policy VALUES (1, ?)", (json.dumps(policy.to_dict()),))

    def policy(self) -> Policy:
        """As stored: it was validated when it was put, and is not judged again by today's limits."""
        row = self._db.execute("SELECT document FROM policy WHERE id = 1").fetchone()
        if not row:
            return Policy()
        doc = json.loads(row[0])
        return Policy(tuple(_rule(r) for r in doc["default_egress"]), tuple(doc["deny"]))

    def add_key(self, key: SigningKey) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO signing_keys VALUES (?,?,?)", (key.kid, key.private_pem, key.created_at))

    def keys(self) -> list[SigningKey]:
        rows = self._db.execute("SELECT kid, private_pem, created_at FROM signing_keys ORDER BY created_at DESC")
        return [SigningKey(kid=r[0], private_pem=bytes(r[1]), created_at=r[2]) for r in rows]


def _rule(r: dict[str, Any]) -> EgressRule:
    return rule_from_dict(r)


def _session_from_row(row: tuple[object, ...]) -> Session:
    (sid, state, node, image, created, expires, egress, limits, labels, env, container, token_id, report, idle,
     failure) = row  # fmt: skip
    mem, cpus, pids = json.loads(str(limits))
    return Session(
        id=str(sid),
        state=State(str(state)),
        node_id=str(node),
        image=str(image),
        created_at=float(str(created)),
        expires_at=float(str(expires)),
        egress=tuple(_rule(r) for r in json.loads(str(egress))),
        limits=Limits(mem, cpus, pids),
        labels=json.loads(str(labels)),
        env=json.loads(str(env)),
        container_id=str(container),
        token_id=str(token_id),
        report_only=bool(report),
        idle_timeout_s=int(str(idle)),
        failure_reason=str(failure),
    )
