"""The access-log receiver: which entries are decisions, and what counts as a session being in use."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from envoy_data_plane.envoy.config.core.v3 import Address, Pipe, RequestMethod
from envoy_data_plane.envoy.data.accesslog.v3 import (
    AccessLogCommon,
    AccessLogType,
    HttpAccessLogEntry,
    HttpRequestProperties,
)
from envoy_data_plane.envoy.service.accesslog.v3 import (
    StreamAccessLogsMessage,
    StreamAccessLogsMessageHttpAccessLogEntries,
)

from control_plane.audit.access_log import AccessLogReceiver
from control_plane.audit.decisions import DecisionLog
from control_plane.audit.entries import LoggedRequest
from control_plane.audit.journal import DecisionJournal
from control_plane.workers import Workers

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
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    activity = Activity()
    receiver = AccessLogReceiver(DecisionLog(journal, Workers("audit", 1)), activity)
    stream: Counter[str] = Counter()  # one Envoy worker's stream
    receiver.record([logged("CONNECT", "DownstreamTunnelSuccessfullyEstablished")], stream)
    assert activity.in_use_now == 1
    receiver.record([logged("CONNECT", "DownstreamPeriodic")], stream)  # still open: activity, not a decision
    receiver.record([logged("CONNECT", "DownstreamEnd")], stream)
    assert activity.in_use_now == 0 and activity.touched == ["s-1"] * 3
    journal.flush()
    (tunnel,) = journal.query("s-1")
    assert (tunnel.method, tunnel.verdict, tunnel.bytes_sent, tunnel.bytes_received) == ("CONNECT", "allow", 5, 7)
    journal.close()


def test_a_long_plain_request_is_logged_once_when_it_ends(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    receiver = AccessLogReceiver(DecisionLog(journal, Workers("audit", 1)), Activity())
    stream: Counter[str] = Counter()
    receiver.record([logged("GET", "DownstreamPeriodic"), logged("GET", "DownstreamPeriodic")], stream)
    receiver.record([logged("GET", "DownstreamEnd")], stream)
    journal.flush()
    assert [e.method for e in journal.query("s-1")] == ["GET"]
    journal.close()


def test_a_short_tunnel_opened_and_closed_in_one_batch_is_one_decision(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    receiver = AccessLogReceiver(DecisionLog(journal, Workers("audit", 1)), Activity())
    both = [logged("CONNECT", "DownstreamTunnelSuccessfullyEstablished"), logged("CONNECT", "DownstreamEnd")]
    receiver.record(both, Counter())
    journal.flush()
    (tunnel,) = journal.query("s-1")
    assert (tunnel.bytes_sent, tunnel.bytes_received) == (5, 7)
    journal.close()


async def test_when_envoy_goes_away_its_open_tunnels_no_longer_hold_sessions(tmp_path: Path) -> None:
    journal = DecisionJournal(tmp_path / "d.db", keep=100, keep_per_session=100)
    activity = Activity()
    receiver = AccessLogReceiver(DecisionLog(journal, Workers("audit", 1)), activity)
    opening = StreamAccessLogsMessage(http_logs=StreamAccessLogsMessageHttpAccessLogEntries(log_entry=[
        HttpAccessLogEntry(
            common_properties=AccessLogCommon(
                downstream_local_address=Address(pipe=Pipe(path=PATH)),
                access_log_type=AccessLogType.DownstreamTunnelSuccessfullyEstablished,
            ),
            request=HttpRequestProperties(request_method=RequestMethod.CONNECT, authority="a.test:443"),
        )
    ]))  # fmt: skip

    async def messages() -> AsyncIterator[bytes]:
        yield bytes(opening)
        assert activity.in_use_now == 1  # held while the stream is up

    await receiver.stream(messages(), None)
    assert activity.in_use_now == 0
    journal.close()
