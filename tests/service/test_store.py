"""The store keeps sessions, the policy and signing keys on SQLite and on PostgreSQL alike: every test
that takes `database_url` runs on both (a private PostgreSQL server, tests/support/postgres.py)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from control_plane.db import migrations
from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import Limits, Session, State
from control_plane.domain.tokens import generate_key
from control_plane.errors import Unavailable
from control_plane.store import Store
from tests.support.service import free_port


def session(n: int = 1, **changes: object) -> Session:
    s = Session(
        id=f"s-{n:016x}", state=State.READY, node_id="node-a", image="img", created_at=1000.0 + n + 0.123456789,
        expires_at=5000.5, egress=(EgressRule("pypi.org", (443,), ("GET",)),), limits=Limits(512, 1.5, 256),
        labels={"team": "a"}, env={"K": "v"}, container_id=f"c{n}", token_id=f"t{n}", report_only=True,
        idle_timeout_s=30, failure_reason="",
    )  # fmt: skip
    return replace(s, **changes)  # type: ignore[arg-type]


@pytest.fixture()
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.close()


def stored(url: str) -> list[Session]:
    """The sessions in the database at `url`, read by a store of its own."""
    store = Store(url)
    try:
        return store.sessions()
    finally:
        store.close()


def versions(url: str) -> list[int]:
    """The schema versions recorded in the database at `url`, read past the store."""
    if url.startswith("sqlite://"):
        with sqlite3.connect(url[len("sqlite://") :]) as db:
            rows = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    else:
        with psycopg.connect(url) as db:
            rows = db.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    return [r[0] for r in rows]


def test_a_session_is_kept_whole_replaced_and_deleted(database_url: str, store: Store) -> None:
    first, second = session(1), session(2, labels={}, env={}, report_only=False)
    store.put_session(second).result()
    store.put_session(first).result()
    assert store.sessions() == [first, second]  # oldest first, every field as it was (floats to the bit)
    failed = replace(first, state=State.FAILED, failure_reason="sandbox-exited: OOM killed")
    store.put_session(failed).result()
    store.delete_session(second.id).result()
    store.delete_session("s-00000000000000ff").result()  # none: nothing happens
    store.close()
    assert stored(database_url) == [failed]


def test_the_policy_is_replaced_whole(store: Store) -> None:
    assert store.policy() == Policy()
    store.put_policy(Policy((EgressRule("a.test", (80,), ()),), ("evil.test",))).result()
    latest = Policy((EgressRule("b.test", (443, 8443), ("GET",)),), ())
    store.put_policy(latest).result()
    assert store.policy() == latest


def test_signing_keys_come_back_newest_first(store: Store) -> None:
    old, new = generate_key(100.0), generate_key(200.0)
    store.add_key(new).result()
    store.add_key(old).result()
    assert store.keys() == [new, old]


async def test_writes_land_in_the_order_they_were_made(store: Store) -> None:
    """Made one after another without waiting (as concurrent requests do), the last one made wins."""
    pending = [store.put_session(session(1, container_id=f"c-{i}")) for i in range(50)]
    pending.append(store.delete_session(session(2).id))
    await asyncio.gather(*pending)
    assert [s.container_id for s in store.sessions()] == ["c-49"]


@contextmanager
def writes_blocked(url: str) -> Iterator[None]:
    """Another connection holds the sessions table until the block ends."""
    if url.startswith("sqlite://"):
        other = sqlite3.connect(url[len("sqlite://") :], isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        with psycopg.connect(url) as other, other.transaction():
            other.execute("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
            yield


async def test_a_write_that_waits_for_the_database_leaves_the_event_loop_free(database_url: str, store: Store) -> None:
    with writes_blocked(database_url):
        write = asyncio.ensure_future(put(store, session(1)))
        ticks = 0
        while ticks < 20:  # the loop keeps running other work while the write waits on the lock
            await asyncio.sleep(0)
            ticks += 1
        assert not write.done()
    await write  # the lock is gone: the write commits
    assert [s.id for s in store.sessions()] == [session(1).id]


async def put(store: Store, s: Session) -> None:
    await store.put_session(s)


def test_close_finishes_every_write_made_before(database_url: str, store: Store) -> None:
    for n in range(1, 41):
        store.put_session(session(n))  # never awaited
    store.close()
    assert len(stored(database_url)) == 40


WRITER = """
import asyncio, sys
from control_plane.store import Store
from tests.service.test_store import session

async def main() -> None:
    store = Store(sys.argv[1])
    n = 0
    while True:
        n += 1
        await store.put_session(session(n))
        print(session(n).id, flush=True)  # acknowledged

asyncio.run(main())
"""


def test_what_was_acknowledged_survives_a_kill_9(database_url: str) -> None:
    Store(database_url).close()  # migrated before the writer starts
    writer = subprocess.Popen([sys.executable, "-c", WRITER, database_url], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    acknowledged = [writer.stdout.readline().strip() for _ in range(25)]
    writer.kill()  # mid-stream: it was writing the next one
    writer.wait()
    assert acknowledged[-1] == session(25).id
    assert set(acknowledged) <= {s.id for s in stored(database_url)}


def test_a_database_that_cannot_be_written_is_unavailable(database_url: str, store: Store) -> None:
    read_only = "PRAGMA query_only = ON" if store.kind == "sqlite" else "SET default_transaction_read_only = on"
    store._run(store._database().execute, read_only).result()  # as a full disk or a read-only mount does
    with pytest.raises(Unavailable) as err:
        store.put_session(session(1)).result()
    assert "state database" in err.value.message and "read" not in err.value.message
    assert store.sessions() == []


async def test_an_unreachable_postgresql_is_unavailable_and_its_password_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    with pytest.raises(Unavailable):
        Store(f"postgresql://sandgate:s3cret-pw@127.0.0.1:{free_port()}/sandgate")
    assert "127.0.0.1" in caplog.text and "s3cret-pw" not in caplog.text


# ---- migrations -------------------------------------------------------------------------------------


def test_a_new_database_gets_every_step_once(database_url: str) -> None:
    Store(database_url).close()
    Store(database_url).close()
    assert versions(database_url) == list(range(1, migrations.LATEST + 1))


def test_replicas_that_start_together_migrate_once(database_url: str) -> None:
    with ThreadPoolExecutor(3) as pool:
        stores = list(pool.map(lambda _: Store(database_url), range(3)))
    stores[0].put_session(session(1)).result()
    assert [len(s.sessions()) for s in stores] == [1, 1, 1]
    for opened in stores:
        opened.close()
    assert versions(database_url) == list(range(1, migrations.LATEST + 1))


def test_a_database_from_a_newer_control_plane_is_refused(database_url: str) -> None:
    store = Store(database_url)
    store._run(
        store._database().execute,
        "INSERT INTO schema_version (version, applied_at) VALUES (:v, 0)",
        {"v": migrations.LATEST + 1},
    ).result()
    store.close()
    with pytest.raises(Unavailable, match=f"schema version {migrations.LATEST + 1}"):
        Store(database_url)


# The schema and the writes of the control plane before versioned migrations, as they were.
BEFORE_VERSIONS = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, node_id TEXT NOT NULL, image TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, egress TEXT NOT NULL, limits TEXT NOT NULL,
    labels TEXT NOT NULL, env TEXT NOT NULL, container_id TEXT NOT NULL, token_id TEXT NOT NULL,
    report_only INTEGER NOT NULL, idle_timeout_s INTEGER NOT NULL, failure_reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS policy (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signing_keys (kid TEXT PRIMARY KEY, private_pem BLOB NOT NULL, created_at REAL NOT NULL);
"""
BEFORE_FAILURE_REASONS = """CREATE TABLE sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL, node_id TEXT NOT NULL,
    image TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL, egress TEXT NOT NULL,
    limits TEXT NOT NULL, labels TEXT NOT NULL, env TEXT NOT NULL, container_id TEXT NOT NULL,
    token_id TEXT NOT NULL, report_only INTEGER NOT NULL, idle_timeout_s INTEGER NOT NULL);
CREATE TABLE policy (id INTEGER PRIMARY KEY CHECK (id = 1), document TEXT NOT NULL);
CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, private_pem BLOB NOT NULL, created_at REAL NOT NULL);
"""


def test_a_database_of_the_control_plane_before_versions_is_upgraded_in_place(tmp_path: Path) -> None:
    path, key = tmp_path / "sandgate.db", generate_key(7.0)
    old = session(1, state=State.FAILED, failure_reason="crashed")
    with sqlite3.connect(path) as db:
        db.executescript(BEFORE_VERSIONS)
        db.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (old.id, old.state.value, old.node_id, old.image, old.created_at, old.expires_at,
             '[{"host": "pypi.org", "ports": [443], "methods": ["GET"]}]', "[512, 1.5, 256]", '{"team": "a"}',
             '{"K": "v"}', old.container_id, old.token_id, 1, 30, "crashed"),
        )  # fmt: skip
        db.execute("INSERT OR REPLACE INTO policy VALUES (1, ?)", ('{"default_egress": [], "deny": ["x.test"]}',))
        db.execute("INSERT INTO signing_keys VALUES (?,?,?)", (key.kid, key.private_pem, key.created_at))
    db.close()
    store = Store(path)
    assert store.sessions() == [old] and store.keys() == [key] and store.policy() == Policy((), ("x.test",))
    store.put_session(session(2)).result()
    store.close()
    assert versions(f"sqlite://{path}") == list(range(1, migrations.LATEST + 1))
    assert [s.id for s in stored(f"sqlite://{path}")] == [old.id, session(2).id]


def test_a_database_from_before_failure_reasons_gets_the_column(tmp_path: Path) -> None:
    path = tmp_path / "sandgate.db"
    with sqlite3.connect(path) as db:
        db.executescript(BEFORE_FAILURE_REASONS)
        db.execute("INSERT INTO sessions VALUES ('s-0000000000000001', 'READY', 'n', 'i', 1, 2, '[]',"
                   " '[512, 1.0, 512]', '{}', '{}', 'c', 't', 0, 0)")  # fmt: skip
    db.close()
    store = Store(path)
    assert [s.failure_reason for s in store.sessions()] == [""]
    failed = session(2, state=State.FAILED, failure_reason="sandbox-exited: exit code 137 (OOM killed)")
    store.put_session(failed).result()
    store.close()
    reasons = {s.id: s.failure_reason for s in stored(f"sqlite://{path}")}
    assert reasons == {"s-0000000000000001": "", failed.id: failed.failure_reason}
    assert versions(f"sqlite://{path}") == list(range(1, migrations.LATEST + 1))
