"""Decision events on disk: their own SQLite file, written by a background thread.

Envoy may log thousands of requests a second. Writing them on the event loop (and waiting for each
fsync) stalled ext_authz answers by tens of milliseconds, so events are queued and written in batches
by one thread, with `synchronous=NORMAL` in WAL mode: they survive a crash of the process, not of the
machine. Ids are assigned when an event is appended, so followers and metrics never wait for the disk.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from control_plane.audit.decisions import DecisionEvent

log = logging.getLogger(__name__)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, session_id TEXT NOT NULL, method TEXT NOT NULL,
    host TEXT NOT NULL, port INTEGER NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL,
    response_code INTEGER NOT NULL, bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    duration_ms REAL NOT NULL, source TEXT NOT NULL, stream_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_session ON decisions (session_id, id);
DROP INDEX IF EXISTS decisions_by_stream;
CREATE INDEX IF NOT EXISTS decisions_by_tunnel ON decisions (stream_id) WHERE method = 'CONNECT';
"""
_INSERT = "INSERT INTO decisions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
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
    def __init__(self, path: Path, keep: int) -> None:
        self._keep = keep
        self._writer = _connect(path)
        path.chmod(0o600)
        self._writer.executescript(_SCHEMA)
        self._reader = _connect(path)
        self._reading = threading.Lock()  # queries run on worker threads and share one connection
        self._next_id = int(self._writer.execute("SELECT COALESCE(MAX(id), 0) FROM decisions").fetchone()[0]) + 1
        self._work: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="decision-journal", daemon=True)
        self._thread.start()

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
                f"SELECT * FROM decisions WHERE {where} ORDER BY id DESC LIMIT ?", [v for _, v in filters] + [limit]
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

    def _write(self, batch: list[_Write]) -> None:
        try:
            self._writer.execute("BEGIN")
            for sql, rows in batch:
                if sql == _COMPLETE:
                    self._complete(rows)
                else:
                    self._writer.executemany(sql, rows)
            self._writer.execute("DELETE FROM decisions WHERE id < ?", (self._next_id - self._keep,))
            self._writer.execute("COMMIT")
        except sqlite3.Error:
            log.exception("decision journal: a batch of %d writes failed", len(batch))
            self._writer.execute("ROLLBACK")


def _values(e: DecisionEvent) -> tuple[object, ...]:
    return (e.time, e.session_id, e.method, e.host, e.port, e.verdict, e.reason, e.response_code,
            e.bytes_sent, e.bytes_received, e.duration_ms, e.source, e.stream_id)  # fmt: skip
