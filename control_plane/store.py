"""Persistence for sessions, the global policy and signing keys, on SQLite or PostgreSQL.

One SQL for both (`db/backend.py` holds the difference), named columns, versioned migrations
(`db/migrations.py`). Every call runs on the store's own thread, one at a time and in the order they
were made: the event loop never waits for a disk or a network, and a write is acknowledged (its
`Pending` completes) only once it is committed (SQLite: `synchronous=FULL`; PostgreSQL: the server's
commit). Reads are blocking and meant for startup and tools; writes return a `Pending` to await.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

from control_plane.db import migrations
from control_plane.db.backend import Database, Params, driver_errors
from control_plane.db.url import describe, kind_of, sqlite_url
from control_plane.domain.policy import Policy
from control_plane.domain.rules import EgressRule, rule_from_dict
from control_plane.domain.session import Limits, OnUnlisted, Session, State
from control_plane.domain.tokens import SigningKey
from control_plane.errors import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_COLUMNS = (
    "id", "state", "node_id", "image", "created_at", "expires_at", "egress", "limits", "labels", "env",
    "container_id", "token_id", "report_only", "idle_timeout_s", "failure_reason",
    "on_unlisted",
)  # fmt: skip
_PUT_SESSION = (
    f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) VALUES ({', '.join(':' + c for c in SESSION_COLUMNS)})"
    f" ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in SESSION_COLUMNS[1:])}"
)
_SESSIONS = f"SELECT {', '.join(SESSION_COLUMNS)} FROM sessions ORDER BY created_at, id"
_PUT_POLICY = (
    "INSERT INTO policy (id, document) VALUES (1, :document)"
    " ON CONFLICT (id) DO UPDATE SET document = excluded.document"
)
_ADD_KEY = "INSERT INTO signing_keys (kid, private_pem, created_at) VALUES (:kid, :private_pem, :created_at)"
_KEYS = "SELECT kid, private_pem, created_at FROM signing_keys ORDER BY created_at DESC"


class Pending(Generic[T]):
    """A store call queued or running on the store's thread. `await` it on the event loop (cancelling
    the awaiting task does not cancel the call), or call `result()` from other code."""

    def __init__(self, future: Future[T]) -> None:
        self._future = future

    def __await__(self) -> Generator[Any, None, T]:
        return asyncio.shield(asyncio.wrap_future(self._future)).__await__()

    def result(self, timeout: float | None = None) -> T:
        """Block until the call is done; its value, or the error it raised (Unavailable)."""
        return self._future.result(timeout)


class Store:
    """The control plane's state. Raises Unavailable, on any call, when the database cannot be reached or
    written (disk full, read-only, locked, PostgreSQL down); the driver's own words go to the log only."""

    def __init__(self, target: str | Path) -> None:
        """`target`: a database URL (`sqlite:///absolute/path`, `postgresql://...`) or an SQLite file's path.
        Connects and migrates to the latest schema; InvalidArgument for a URL of another kind, Unavailable
        when the database cannot be reached or is newer than this code."""
        url = sqlite_url(target) if isinstance(target, Path) else target
        self._errors = driver_errors(kind_of(url))
        self._name = describe(url)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="store")  # one thread: calls keep their order
        self._db: Database | None = None
        try:
            self._db = self._run(Database, url).result()
            self._run(migrations.migrate, self._db).result()
        except BaseException:
            self.close()
            raise

    @property
    def kind(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._database().kind

    def close(self) -> None:
        """Finish every call made so far (nothing queued is dropped), then close the connection."""
        if self._db is not None:
            self._run(self._db.close).result()
            self._db = None
        self._thread.shutdown(wait=True)

    # ---- writes: each returns a Pending that completes once committed ----------------------------

    def put_session(self, s: Session) -> Pending[None]:
        """Insert or replace the session with `s.id`."""
        return self._write(_PUT_SESSION, _session_row(s))

    def delete_session(self, session_id: str) -> Pending[None]:
        """Remove a session's row; nothing happens for an id that has none."""
        return self._write("DELETE FROM sessions WHERE id = :id", {"id": session_id})

    def put_policy(self, policy: Policy) -> Pending[None]:
        """Replace the global policy."""
        return self._write(_PUT_POLICY, {"document": json.dumps(policy.to_dict())})

    def add_key(self, key: SigningKey) -> Pending[None]:
        """Add a signing key. A `kid` already stored is a bug (kids are random): the driver's error passes through."""
        return self._write(_ADD_KEY, {"kid": key.kid, "private_pem": key.private_pem, "created_at": key.created_at})

    # ---- reads: blocking, for startup and tools ---------------------------------------------------

    def sessions(self) -> list[Session]:
        """Every stored session, oldest first (then by id)."""
        rows = self._read(_SESSIONS)
        return [_session_from(dict(zip(SESSION_COLUMNS, row, strict=True))) for row in rows]

    def policy(self) -> Policy:
        """The global policy as stored (it was validated when it was put, and is not judged again by today's
        limits); the empty Policy when none was ever put."""
        rows = self._read("SELECT document FROM policy WHERE id = 1")
        if not rows:
            return Policy()
        doc = json.loads(rows[0][0])
        return Policy(tuple(_rule(r) for r in doc["default_egress"]), tuple(doc["deny"]))

    def keys(self) -> list[SigningKey]:
        """Every signing key, newest first."""
        rows = self._read(_KEYS)
        return [SigningKey(kid=r[0], private_pem=bytes(r[1]), created_at=float(r[2])) for r in rows]

    # ---- the store's thread -------------------------------------------------------------------------

    def _database(self) -> Database:
        if self._db is None:
            raise Unavailable("the state database is closed")
        return self._db

    def _write(self, sql: str, params: Params) -> Pending[None]:
        """One statement in its own transaction."""
        db = self._database()

        def write() -> None:
            with db.transaction():
                db.execute(sql, params)

        return self._run(write)

    def _read(self, sql: str) -> list[tuple[Any, ...]]:
        return self._run(self._database().execute, sql).result()

    def _run(self, fn: Callable[..., T], *args: Any) -> Pending[T]:
        """`fn(*args)` on the store's thread, after every call made before."""

        def guarded() -> T:
            try:
                return fn(*args)
            except self._errors as exc:
                log.error("state database %s: %s", self._name, exc)
                raise Unavailable("the control plane cannot use its state database; see its log") from None

        return Pending(self._thread.submit(guarded))


def _session_row(s: Session) -> dict[str, object]:
    return {
        "id": s.id, "state": s.state.value, "node_id": s.node_id, "image": s.image, "created_at": s.created_at,
        "expires_at": s.expires_at, "egress": json.dumps([r.to_dict() for r in s.egress]),
        "limits": json.dumps([s.limits.memory_mb, s.limits.cpus, s.limits.pids]),
        "labels": json.dumps(dict(s.labels)), "env": json.dumps(dict(s.env)), "container_id": s.container_id,
        "token_id": s.token_id, "report_only": int(s.report_only), "idle_timeout_s": s.idle_timeout_s,
        "failure_reason": s.failure_reason, "on_unlisted": s.on_unlisted.value,
    }  # fmt: skip


def _rule(r: dict[str, Any]) -> EgressRule:
    return rule_from_dict(r)


def _session_from(row: dict[str, Any]) -> Session:
    mem, cpus, pids = json.loads(row["limits"])
    return Session(
        id=row["id"],
        state=State(row["state"]),
        node_id=row["node_id"],
        image=row["image"],
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        egress=tuple(_rule(r) for r in json.loads(row["egress"])),
        limits=Limits(mem, cpus, pids),
        labels=json.loads(row["labels"]),
        env=json.loads(row["env"]),
        container_id=row["container_id"],
        token_id=row["token_id"],
        report_only=bool(row["report_only"]),
        idle_timeout_s=int(row["idle_timeout_s"]),
        failure_reason=row["failure_reason"],
        on_unlisted=OnUnlisted(row["on_unlisted"]),
    )
