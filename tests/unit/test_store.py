"""The session store keeps why a session failed, also in a database written before it did."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from control_plane.domain.session import Limits, Session, State
from control_plane.store import Store

OLD_SCHEMA = """CREATE TABLE sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, node_id TEXT NOT NULL,
    image TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL, egress TEXT NOT NULL,
    limits TEXT NOT NULL, labels TEXT NOT NULL, env TEXT NOT NULL, container_id TEXT NOT NULL,
    token_id TEXT NOT NULL, report_only INTEGER NOT NULL, idle_timeout_s INTEGER NOT NULL)"""


def failed_session() -> Session:
    return Session(id="s-0123456789abcdef", state=State.FAILED, node_id="n", image="i", created_at=1.0,
                   expires_at=2.0, egress=(), limits=Limits(512, 1.0, 512),
                   failure_reason="sandbox-exited: exit code 137 (OOM killed)")  # fmt: skip


def test_a_failure_reason_is_kept_in_an_older_database(tmp_path: Path) -> None:
    path = tmp_path / "sandgate.db"
    with sqlite3.connect(path) as old:
        old.execute(OLD_SCHEMA)
        old.execute("INSERT INTO sessions VALUES ('s-1', 'READY', 'n', 'i', 1, 2, '[]', '[512, 1.0, 512]',"
                    " '{}', '{}', 'c', 't', 0, 0)")  # fmt: skip
    old.close()
    store = Store(path)
    assert [s.failure_reason for s in store.sessions()] == [""]
    store.put_session(failed_session())
    store.close()
    reopened = Store(path)
    reasons = {s.id: s.failure_reason for s in reopened.sessions()}
    reopened.close()
    assert reasons == {"s-1": "", failed_session().id: "sandbox-exited: exit code 137 (OOM killed)"}
