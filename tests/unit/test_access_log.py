"""The access-log receiver: which entries are decisions, and what counts as a session being in use."""

from __future__ import annotations

from pathlib import Path

from control_plane.audit.access_log import AccessLogReceiver
from control_plane.audit.decisions import DecisionLog
from control_plane.audit.entries import LoggedRequest
from control_plane.audit.journal import DecisionJournal

PATH = "/var/lib/sandgate/sessions/s-1/proxy.sock"


class Activity:
    def __init__(self) -> None:
        self.touched: list[str] = []
        self.in_use_now = 0

    def touch(self, session_id: str, when: float | None = None) -> None:
        self.touched.append(session_id)

    def in_use(self, session_id: str, delta: int) -> None:
        self.in_use_now += delta


def logged(method: str, log_type: str, code: int = 200, stream: str = "t1") -> LoggedRequest:
    return LoggedRequest(
        listener_path=PATH, method=method, authority="a.test:443", response_code=code, details="via_upstream",
        route_name="allow:a.test", deny_header="", bytes_sent=5, bytes_received=7, duration_ms=1.0,
        start_time=1.0, stream_id=stream, log_type=log_type,
    )  # fmt: skip


def test_a_tunnel_is_one_decision_and_in_use_while_open(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100)
    activity = Activity()
    receiver = AccessLogReceiver(DecisionLog(journal), activity)
    receiver.record([logged("CONNECT", "DownstreamTunnelSuccessfullyEstablished")])
    assert activity.in_use_now == 1
    receiver.record([logged("CONNECT", "DownstreamPeriodic")])  # still open: activity, not a decision
    receiver.record([logged("CONNECT", "DownstreamEnd")])
    assert activity.in_use_now == 0 and activity.touched == ["s-1"] * 3
    journal.flush()
    (tunnel,) = journal.query("s-1")
    assert (tunnel.method, tunnel.verdict, tunnel.bytes_sent, tunnel.bytes_received) == ("CONNECT", "allow", 5, 7)
    journal.close()


def test_a_long_plain_request_is_logged_once_when_it_ends(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100)
    receiver = AccessLogReceiver(DecisionLog(journal), Activity())
    receiver.record([logged("GET", "DownstreamPeriodic"), logged("GET", "DownstreamPeriodic")])
    receiver.record([logged("GET", "DownstreamEnd")])
    journal.flush()
    assert [e.method for e in journal.query("s-1")] == ["GET"]
    journal.close()


def test_a_short_tunnel_opened_and_closed_in_one_batch_is_one_decision(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100)
    receiver = AccessLogReceiver(DecisionLog(journal), Activity())
    receiver.record([logged("CONNECT", "DownstreamTunnelSuccessfullyEstablished"), logged("CONNECT", "DownstreamEnd")])
    journal.flush()
    (tunnel,) = journal.query("s-1")
    assert (tunnel.bytes_sent, tunnel.bytes_received) == (5, 7)
    journal.close()
