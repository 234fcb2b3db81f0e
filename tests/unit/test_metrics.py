"""The metrics registry: one per App, every Sandgate family with its type, and what the audit path counts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from control_plane.audit.decisions import FOLLOWER_BACKLOG, DecisionLog
from control_plane.audit.events import DecisionEvent
from control_plane.audit.journal import DecisionJournal
from control_plane.authz.service import AuthorizationService
from control_plane.metrics import Metrics, new_metrics
from control_plane.workers import Workers

HISTOGRAMS = [
    "sandgate_session_create_seconds",
    "sandgate_admin_write_ack_seconds",
    "sandgate_ext_authz_check_seconds",
    "sandgate_exec_seconds",
    "sandgate_audit_lag_seconds",
]
COUNTERS = [
    "sandgate_sessions_created",
    "sandgate_sessions_deleted",
    "sandgate_session_create_failures",
    "sandgate_xds_nacks",
    "sandgate_audit_entries_lost",
    "sandgate_decisions",
    "sandgate_ext_authz_checks",
    "sandgate_sandbox_exits",
]


def families(metrics: Metrics) -> dict[str, str]:
    body, _ = metrics.render()
    return {f.name: f.type for f in text_string_to_metric_families(body.decode())}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def event(when: float, duration_ms: float = 0.0, source: str = "envoy") -> DecisionEvent:
    return DecisionEvent(id=0, time=when, session_id="s-1", method="GET", host="a.test", port=80, verdict="deny",
                         reason="host-not-allowed", duration_ms=duration_ms, source=source)  # fmt: skip


class MemoryStore:
    def append(self, events: list[DecisionEvent]) -> int:
        return 1

    def complete(self, closed: DecisionEvent) -> None: ...
    def query(self, session_id: str, verdict: str, limit: int) -> list[DecisionEvent]:
        return []

    def flush(self, timeout: float = 5.0) -> bool:
        return True


def test_every_family_is_exposed_with_its_type_beside_process_and_gc_metrics() -> None:
    exposed = families(new_metrics())
    assert all(exposed[name] == "histogram" for name in HISTOGRAMS), exposed
    assert all(exposed[name] == "counter" for name in COUNTERS), exposed
    assert exposed["process_cpu_seconds"] == "counter" and exposed["python_gc_collections"] == "counter"
    assert "python_info" in exposed


def test_each_registry_is_its_own() -> None:
    """Several Apps run in one test process: nothing is registered twice, and nothing is shared."""
    first, second = new_metrics(), new_metrics()
    first.sessions.create_seconds.labels(start="warm").observe(0.2)
    first.sessions.create_failures.labels(reason="resource_exhausted").inc()
    assert value(first, "sandgate_session_create_seconds_count", start="warm") == 1
    assert value(first, "sandgate_session_create_failures_total", reason="resource_exhausted") == 1
    assert value(second, "sandgate_session_create_seconds_count", start="warm") is None
    assert value(second, "sandgate_session_create_failures_total", reason="resource_exhausted") is None


def test_a_gauge_is_read_at_each_scrape() -> None:
    metrics, sessions = new_metrics(), [1, 2]
    metrics.gauge("sandgate_sessions", "Live sessions", lambda: len(sessions))
    assert value(metrics, "sandgate_sessions") == 2
    sessions.append(3)
    assert value(metrics, "sandgate_sessions") == 3


def test_openmetrics_is_served_to_whoever_asks_for_it() -> None:
    metrics = new_metrics()
    assert metrics.render()[1].startswith("text/plain")
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")


def test_decisions_are_counted_and_their_lag_observed_once_per_batch() -> None:
    metrics, workers = new_metrics(), Workers("audit", 1)
    log = DecisionLog(MemoryStore(), workers, metrics.audit)
    ended = time.time() - 2.0
    log.record_many([event(ended - 1.0, duration_ms=1000.0), event(ended + 1.0), event(0.0, source="sandgate")])
    workers.shutdown()
    assert value(metrics, "sandgate_decisions_total", verdict="deny", reason="host-not-allowed") == 3
    assert value(metrics, "sandgate_audit_lag_seconds_count") == 1
    lag = value(metrics, "sandgate_audit_lag_seconds_sum")
    assert lag is not None and 2.0 <= lag < 60.0  # the oldest request's end; a lifecycle event has no lag


async def test_a_slow_follower_loses_events_and_they_are_counted() -> None:
    metrics, workers = new_metrics(), Workers("audit", 1)
    log = DecisionLog(MemoryStore(), workers, metrics.audit)
    follower = log.follow()
    reading = asyncio.ensure_future(anext(follower))
    await asyncio.sleep(0)  # the follower is registered, and reads nothing more
    log.record_many([event(time.time())] * (FOLLOWER_BACKLOG + 5))
    await reading
    await follower.aclose()
    workers.shutdown()
    assert value(metrics, "sandgate_audit_entries_lost_total", reason="slow-follower") == 5


def test_a_failed_journal_write_counts_its_entries_as_lost(tmp_path: Path) -> None:
    metrics, workers = new_metrics(), Workers("audit", 1)
    log = DecisionLog(MemoryStore(), workers, metrics.audit)
    journal = DecisionJournal(tmp_path / "d.db", 100, 100, lost=lambda count: log.lost("write-failed", count))
    unbindable = DecisionEvent(id=0, time=1.0, session_id="s-1", method="GET", host=object(),  # type: ignore[arg-type]
                               port=80, verdict="deny", reason="x")  # fmt: skip
    journal.append([unbindable, unbindable])
    assert journal.flush()
    journal.close()
    workers.shutdown()
    assert value(metrics, "sandgate_audit_entries_lost_total", reason="write-failed") == 2


def test_every_ext_authz_check_is_timed_even_one_that_fails_closed() -> None:
    metrics = new_metrics()
    service = AuthorizationService(lambda sid: None, timer=metrics.ext_authz_seconds.observe)
    asyncio.run(service.check(b"\xff\xff\xff", None))
    assert value(metrics, "sandgate_ext_authz_check_seconds_count") == 1


def test_the_observability_doc_lists_every_metric_with_its_type() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "OBSERVABILITY.md").read_text()
    rows = [line[2:-2].split(" | ")[:2] for line in doc.splitlines() if line.startswith("| `sandgate_")]
    documented = {name.strip("`"): kind for name, kind in rows}
    registered = {
        f.name + ("_total" if f.type == "counter" else ""): f.type
        for f in text_string_to_metric_families(new_metrics().render()[0].decode())
        if f.name.startswith("sandgate_") and not (f.type == "gauge" and f.name.endswith("_created"))
    }  # (an unlabelled histogram's creation time reads as a gauge)
    assert {name: kind for name, kind in documented.items() if kind != "gauge"} == registered
