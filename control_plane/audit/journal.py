"""Decision events on disk: their own SQLite file, written by a background thread.

Envoy may log thousands of requests a second. Writing them on the event loop (and waiting for each
fsync) stalled ext_authz answers by tens of milliseconds, so events are queued and written in batches
by one thread, with `synchronous=NORMAL` in WAL mode: they survive a crash of the process, not of the
machine. Ids are assigned when an event is appended, so followers and metrics never wait for the disk.
Retention is fair between sessions (`retention.py`): the writer keeps each session's row counts.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from control_plane.audit.events import DecisionEvent
from control_plane.audit.retention import level_cuts
from control_plane.envoy_contract import ALLOW

log = logging.getLogger(__name__)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, session_id TEXT NOT NULL, method TEXT NOT NULL,
    host TEXT NOT NULL, port INTEGER NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL,
    response_code INTEGER NOT NULL, bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    duration_ms REAL NOT NULL, source TEXT NOT NULL, stream_id TEXT NOT NULL, decided_by TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '', credential TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS decisions_by_session ON decisions (session_id, id);
DROP INDEX IF EXISTS decisions_by_stream;
CREATE INDEX IF NOT EXISTS decisions_by_tunnel ON decisions (stream_id) WHERE method = 'CONNECT';
"""
_ADDED_COLUMNS = ("decided_by", "path", "credential")  # a journal written before them gets them, empty
# Columns by name: a journal upgraded in place has its added columns in the order it gained them.
_COLUMNS = ", ".join(f.name for f in fields(DecisionEvent))
_INSERT = f"INSERT INTO decisions ({_COLUMNS}) VALUES ({', '.join('?' * len(fields(DecisionEvent)))})"
# Only tunnels are completed later, so only they are indexed by stream: an index of every request's
# random stream id dirtied a page per request (about 70 MB/s of WAL at 7,500 requests/s).
_UPDATE_TUNNEL = (
    "UPDATE decisions SET bytes_sent = ?, bytes_received = ?, duration_ms = ?"
    " WHERE stream_id = ? AND method = 'CONNECT'"
)
_COMPLETE = "complete a tunnel"  # handled row by row: update the opening's row, or insert
_Write = tuple[str, list[tuple[Any, ...]]]  # SQL (or _COMPLETE) and its parameter rows
_Work = _Write | threading.Event | None  # rows to write, a flush marker to set once written, or stop


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


class DecisionJournal:
    """At most `keep` decisions; each session's newest `keep_per_session` and its allows go last."""

    def __init__(self, path: Path, keep: int, keep_per_session: int, lost: Callable[[int], None] | None = None) -> None:
        """`lost(count)` is told, from the writer thread, how many events a failed write dropped."""
        self._lost = lost
        self._writer = _connect(path)
        path.chmod(0o600)
        self._writer.executescript(_SCHEMA)
        _add_columns(self._writer)
        self._rows = _Rows(self._writer, keep, keep_per_session)
        self._reader = _connect(path)
        self._reading = threading.Lock()  # queries run on worker threads and share one connection
        self._next_id = int(self._writer.execute("SELECT COALESCE(MAX(id), 0) FROM decisions").fetchone()[0]) + 1
        self._work: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="decision-journal", daemon=True)
        self._thread.start()

    def count_lost_with(self, lost: Callable[[int], None]) -> None:
        """From now on tell `lost(count)` (from the writer thread) how many events a failed write dropped."""
        self._lost = lost

    def append(self, events: list[DecisionEvent]) -> int:
        """Queue the events for the disk with consecutive ids; returns the first id. Call from one thread."""
        first = self._next_id
        self._next_id += len(events)
        rows = [(first + i, *_values(e)) for i, e in enumerate(events)]
        self._work.put((_INSERT, rows))
        return first

    def complete(self, closed: DecisionEvent) -> None:
        """A tunnel closed: its totals go on the row recorded when it opened. If that row is missing
        (its opening was never delivered, or retention dropped it), the closing event is recorded."""
        totals = (closed.bytes_sent, closed.bytes_received, closed.duration_ms, closed.stream_id)
        row = (self._next_id, *_values(closed))
        self._next_id += 1  # reserved; a gap in the ids if the opening row is found
        self._work.put((_COMPLETE, [(totals, row)]))

    def query(self, session_id: str = "", verdict: str = "", limit: int = 100) -> list[DecisionEvent]:
        # Only the filters given, so that a session's decisions are read through its index.
        filters = [(column, value) for column, value in (("session_id", session_id), ("verdict", verdict)) if value]
        where = " AND ".join(f"{column} = ?" for column, _ in filters) or "1"
        with self._reading:
            rows = self._reader.execute(
                f"SELECT {_COLUMNS} FROM decisions WHERE {where} ORDER BY id DESC LIMIT ?",
                [v for _, v in filters] + [limit],
            ).fetchall()
        return [DecisionEvent(*row) for row in rows]

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is on disk."""
        written = threading.Event()
        self._work.put(written)
        return written.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._work.put(None)
        self._thread.join(5)
        self._writer.close()
        self._reader.close()

    def _run(self) -> None:
        while True:
            items = [self._work.get()]
            while len(items) < 512 and not self._work.empty():
                items.append(self._work.get())
            writes = [item for item in items if isinstance(item, tuple)]
            if writes:
                self._write(writes)
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()
            if None in items:
                return

    def _complete(self, closings: list[tuple[Any, ...]]) -> None:
        for totals, row in closings:
            if self._writer.execute(_UPDATE_TUNNEL, totals).rowcount == 0:
                self._writer.execute(_INSERT, row)
                self._rows.added([row])

    def _write(self, batch: list[_Write]) -> None:
        try:
            self._writer.execute("BEGIN")
            for sql, rows in batch:
                if sql == _COMPLETE:
                    self._complete(rows)
                else:
                    self._writer.executemany(sql, rows)
                    self._rows.added(rows)
            self._rows.evict()
            self._writer.execute("COMMIT")
        except sqlite3.Error:
            log.exception("decision journal: a batch of %d writes failed", len(batch))
            self._writer.execute("ROLLBACK")
            self._rows.recount()  # the counts included rows that were rolled back
            if self._lost:
                self._lost(sum(len(rows) for _, rows in batch))


def _add_columns(db: sqlite3.Connection) -> None:
    present = {row[1] for row in db.execute("PRAGMA table_info(decisions)")}
    for column in _ADDED_COLUMNS:
        if column not in present:
            db.execute(f"ALTER TABLE decisions ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")


def _values(e: DecisionEvent) -> tuple[object, ...]:
    return (e.time, e.session_id, e.method, e.host, e.port, e.verdict, e.reason, e.response_code,
            e.bytes_sent, e.bytes_received, e.duration_ms, e.source, e.stream_id, e.decided_by, e.path,
            e.credential)  # fmt: skip


_SESSION, _VERDICT = 2, 6  # positions in an inserted row
_COUNT = "SELECT session_id, COUNT(*), SUM(verdict != 'allow') FROM decisions GROUP BY session_id"
_NEWEST_KEPT = "SELECT id FROM decisions WHERE session_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?"
_EVICT_DENIALS = (
    "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE session_id = ? AND id < ?"
    " AND verdict != 'allow' ORDER BY id LIMIT ?)"
)
_EVICT_OLDEST = (
    "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE session_id = ? ORDER BY id LIMIT ?)"
    " RETURNING verdict != 'allow'"
)


class _Rows:
    """Each session's row and denial counts, kept by the writer thread, and the eviction they steer."""

    def __init__(self, db: sqlite3.Connection, keep: int, keep_per_session: int) -> None:
        self._db = db
        self._keep = keep
        self._keep_per_session = keep_per_session
        self.recount()

    def recount(self) -> None:
        self._total: dict[str, int] = {}
        self._denials: dict[str, int] = {}
        for session_id, total, denials in self._db.execute(_COUNT):
            self._total[session_id], self._denials[session_id] = total, denials
        self._rows = sum(self._total.values())

    def added(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            self._count(row[_SESSION], 1, int(row[_VERDICT] != ALLOW))

    def evict(self) -> None:
        """Back to at most `keep` rows: older denials of the largest sessions first, then anything."""
        if self._over() > 0:
            self._evict_denials()
        if (needed := self._over()) > 0:
            for session_id, cut in level_cuts(self._total, needed).items():
                removed = [denial for (denial,) in self._db.execute(_EVICT_OLDEST, (session_id, cut))]
                self._count(session_id, -len(removed), -sum(removed))

    def _evict_denials(self) -> None:
        """Denials beyond each session's newest `keep_per_session`, largest session first. A session
        with fewer such denials than its share gives what it has, and the rest is asked again."""
        spent: set[str] = set()
        while (needed := self._over()) > 0:
            sizes = {s: n for s, n in self._total.items() if s not in spent and self._denials.get(s)}
            cuts = level_cuts(sizes, needed, self._keep_per_session)
            if not cuts:
                return
            for session_id, cut in cuts.items():
                if self._evict_old_denials(session_id, cut) < cut:
                    spent.add(session_id)

    def _evict_old_denials(self, session_id: str, cut: int) -> int:
        newest_kept = self._db.execute(_NEWEST_KEPT, (session_id, self._keep_per_session - 1)).fetchone()
        if newest_kept is None:
            return 0
        removed = int(self._db.execute(_EVICT_DENIALS, (session_id, newest_kept[0], cut)).rowcount)
        self._count(session_id, -removed, -removed)
        return removed

    def _over(self) -> int:
        return self._rows - self._keep

    def _count(self, session_id: str, rows: int, denials: int) -> None:
        self._rows += rows
        total = self._total.get(session_id, 0) + rows
        if total > 0:
            self._total[session_id] = total
            self._denials[session_id] = self._denials.get(session_id, 0) + denials
        else:
            self._total.pop(session_id, None)
            self._denials.pop(session_id, None)
