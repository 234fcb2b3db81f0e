"""Decision retention is fair: one session's flood evicts only its own older denials."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.audit.events import DecisionEvent
from control_plane.audit.journal import DecisionJournal
from control_plane.audit.retention import level_cuts


@pytest.mark.parametrize(
    ("sizes", "needed", "floor", "cuts"),
    [
        ({"flood": 105_000, "victim": 6}, 5_006, 10_000, {"flood": 5_006}),  # the flood pays, alone
        ({"a": 200, "b": 100, "c": 50}, 120, 0, {"a": 110, "b": 10}),  # a down to b's size, then both
        ({"a": 200, "b": 100, "c": 50}, 1_000, 60, {"a": 140, "b": 40}),  # never below the floor
        ({"a": 5, "b": 5, "c": 5}, 2, 0, {"a": 1, "b": 1, "c": 1}),  # a tie: a little more, never less
        ({"a": 5}, 0, 0, {}),
    ],
)
def test_the_largest_sessions_are_cut_first(
    sizes: dict[str, int], needed: int, floor: int, cuts: dict[str, int]
) -> None:
    assert level_cuts(sizes, needed, floor) == cuts


def decision(session_id: str, verdict: str, host: str = "flood.test") -> DecisionEvent:
    return DecisionEvent(id=0, time=1.0, session_id=session_id, method="GET", host=host, port=80,
                         verdict=verdict, reason="r")  # fmt: skip


def flood(journal: DecisionJournal, session_id: str, count: int, verdict: str = "deny") -> None:
    for _ in range(count // 500):
        journal.append([decision(session_id, verdict)] * 500)
    journal.flush(30)


def test_a_flood_of_denials_does_not_evict_another_sessions_allow(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=10_000, keep_per_session=1_000)
    journal.append([decision("s-victim", "allow", "real.test"), decision("s-victim", "deny", "x.test")])
    journal.append([decision("s-flood", "allow", "exfil.test")])
    flood(journal, "s-flood", 20_000)
    assert [e.host for e in journal.query("s-victim")] == ["x.test", "real.test"]
    assert "exfil.test" in {e.host for e in journal.query("s-flood", "allow")}  # its own flood cannot hide it
    assert len(journal.query(limit=100_000)) <= 10_000
    journal.close()


def test_a_busy_session_keeps_its_newest_when_the_flood_is_elsewhere(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=10_000, keep_per_session=1_000)
    flood(journal, "s-busy", 3_000)
    flood(journal, "s-flood", 20_000)
    assert len(journal.query("s-busy", limit=100_000)) == 3_000  # the flooder was the largest
    assert len(journal.query(limit=100_000)) <= 10_000
    journal.close()


def test_the_bound_holds_when_every_session_is_small(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=1_000, keep_per_session=500)
    for i in range(30):
        flood(journal, f"s-{i}", 500, verdict="allow")  # allows only, each within its share
    kept = journal.query(limit=100_000)
    assert 990 <= len(kept) <= 1_000
    per_session = {e.session_id for e in kept}
    assert len(per_session) == 30  # cut evenly, not the newest sessions only
    journal.close()


def test_counts_survive_a_reopen(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=2_000, keep_per_session=500)
    journal.append([decision("s-victim", "allow", "real.test")])
    flood(journal, "s-flood", 1_500)
    journal.close()
    reopened = DecisionJournal(tmp_path / "d.db", keep=2_000, keep_per_session=500)
    flood(reopened, "s-flood", 1_500)
    assert [e.host for e in reopened.query("s-victim")] == ["real.test"]
    assert len(reopened.query(limit=100_000)) <= 2_000
    reopened.close()
