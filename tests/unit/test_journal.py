"""The decision journal (a real SQLite file) and the decision log's query consistency."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from control_plane.audit.decisions import DecisionLog
from control_plane.audit.events import DecisionEvent
from control_plane.audit.journal import DecisionJournal
from control_plane.workers import Workers


def event(
    session_id: str = "s-1", host: str = "example.com", verdict: str = "allow", stream: str = ""
) -> DecisionEvent:
    method = "CONNECT" if stream else "GET"  # only tunnels are completed later
    return DecisionEvent(id=0, time=1.0, session_id=session_id, method=method, host=host, port=80,
                         verdict=verdict, reason="allowed", stream_id=stream)  # fmt: skip


def test_a_flush_returns_only_once_everything_queued_before_it_is_on_disk(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100_000, keep_per_session=100_000)
    for round_ in range(20):  # the writer is busy with earlier batches while later ones and the flush queue up
        for _ in range(100):
            journal.append([event(f"s-{round_}")])
        assert journal.flush(timeout=10)
        assert len(journal.query(limit=10_000)) == 100 * (round_ + 1)
    journal.close()


def test_ids_are_consecutive_and_newest_first(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    first = journal.append([event(host="a"), event(host="b")])
    assert journal.append([event(host="c")]) == first + 2
    journal.flush()
    assert [(e.id - first, e.host) for e in journal.query()] == [(2, "c"), (1, "b"), (0, "a")]
    journal.close()


def test_retention_keeps_only_the_newest(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=10, keep_per_session=10)
    for i in range(30):
        journal.append([event(host=f"h{i}")])
    journal.flush()
    assert [e.host for e in journal.query(limit=100)] == [f"h{i}" for i in range(29, 19, -1)]
    journal.close()


def test_filters_and_tunnel_completion(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    journal.append([event("s-1", stream="t1"), event("s-2", verdict="deny")])
    journal.complete(replace(event("s-1", stream="t1"), bytes_sent=10, bytes_received=20, duration_ms=3.5))
    journal.flush()
    (tunnel,) = journal.query(session_id="s-1")
    assert (tunnel.bytes_sent, tunnel.bytes_received, tunnel.duration_ms) == (10, 20, 3.5)
    assert [e.session_id for e in journal.query(verdict="deny")] == ["s-2"]
    journal.close()


def test_a_tunnel_whose_opening_was_never_recorded_is_recorded_when_it_closes(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    journal.complete(replace(event("s-1", host="late.test", stream="t9"), bytes_sent=7))
    journal.append([event("s-1", host="next.test")])  # ids stay unique: the completion reserved one
    journal.flush()
    assert [(e.host, e.bytes_sent) for e in journal.query("s-1")] == [("next.test", 0), ("late.test", 7)]
    journal.close()


def test_the_journal_survives_a_reopen(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    first = journal.append([event()])
    journal.close()
    reopened = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    assert reopened.append([event()]) == first + 1
    reopened.flush()
    assert len(reopened.query()) == 2
    reopened.close()


async def test_a_query_includes_what_envoy_delivers_while_it_settles(tmp_path: Path) -> None:
    """Envoy batches access logs: a request that finished just before the query arrives during it."""
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    log = DecisionLog(journal, Workers("audit", 1), settle_seconds=0.3)
    query = asyncio.create_task(log.query("s-1"))
    await asyncio.sleep(0.1)
    log.record_many([event("s-1", host="late.example")])
    assert [e.host for e in await query] == ["late.example"]
    journal.close()


_BEFORE_ADDED = """CREATE TABLE decisions (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, session_id TEXT NOT NULL, method TEXT NOT NULL,
    host TEXT NOT NULL, port INTEGER NOT NULL, verdict TEXT NOT NULL, reason TEXT NOT NULL,
    response_code INTEGER NOT NULL, bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL,
    duration_ms REAL NOT NULL, source TEXT NOT NULL, stream_id TEXT NOT NULL{added}
)"""


@pytest.mark.parametrize(
    "added",
    [
        "",  # before approvals and inspection
        ", decided_by TEXT NOT NULL DEFAULT ''",  # approvals only
        ", path TEXT NOT NULL DEFAULT '', credential TEXT NOT NULL DEFAULT ''",  # inspection only
    ],
)
def test_an_older_journal_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path, added: str) -> None:
    path = tmp_path / "d.db"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(_BEFORE_ADDED.format(added=added))
        db.execute(
            "INSERT INTO decisions (id, time, session_id, method, host, port, verdict, reason, response_code,"
            " bytes_sent, bytes_received, duration_ms, source, stream_id)"
            " VALUES (1, 1.0, 's-old', 'GET', 'old.test', 80, 'allow', 'allowed', 200, 1, 2, 3.0, 'envoy', '')"
        )
    journal = DecisionJournal(path, keep=100, keep_per_session=100)
    new = replace(event("s-new"), decided_by="admin", path="/v1/models", credential="openai")
    journal.append([new])
    journal.flush()
    newest, oldest = journal.query()
    assert (oldest.host, oldest.decided_by, oldest.path, oldest.credential) == ("old.test", "", "", "")
    assert (newest.session_id, newest.decided_by, newest.path, newest.credential) == (
        "s-new", "admin", "/v1/models", "openai"
    )  # fmt: skip
    journal.close()
