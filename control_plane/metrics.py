"""The control plane's Prometheus metrics (prometheus-client), in one CollectorRegistry per App.

Several stacks may run in one process (the tests do), so nothing is registered in the library's global
registry: `new_metrics()` builds a registry with every metric below plus the process, GC and platform
collectors, and the admin API's `/metrics` renders that registry. Times are in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# Session creation and Exec take from milliseconds (a warm sandbox) to a minute (a cold start on a busy host).
SLOW_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# An ext_authz check answers in well under a millisecond; an xDS push is ACKed in milliseconds.
FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


@dataclass(frozen=True)
class SessionMetrics:
    """What the session manager counts and times."""

    create_seconds: Histogram  # label start: warm (claimed from the pool) or cold
    created: Counter  # label start
    create_failures: Counter  # label reason: the error's code (invalid_argument, resource_exhausted, ...)
    deleted: Counter  # label reason: requested, expired, idle
    exec_seconds: Histogram  # from the call to the command's exit (or the caller leaving)


@dataclass(frozen=True)
class AuditMetrics:
    """What the decision log counts: decisions, how late they arrive, and any it could not keep."""

    decisions: Counter  # labels verdict, reason
    lag_seconds: Histogram  # from the end of a request in Envoy to its entry in the decision log
    lost: Counter  # label reason: write-failed, unreadable-message, slow-follower


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    sessions: SessionMetrics
    audit: AuditMetrics
    ext_authz_checks: Counter  # label reason
    ext_authz_seconds: Histogram
    sandbox_exits: Counter  # label cause
    admin_write_ack_seconds: Histogram  # label write: egress, policy
    xds_nacks: Counter  # label type_url

    def gauge(self, name: str, documentation: str, read: Callable[[], float]) -> Gauge:
        """A gauge whose value is `read()` at every scrape."""
        gauge = Gauge(name, documentation, registry=self.registry)
        gauge.set_function(read)
        return gauge

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (OpenMetrics if `accept` asks for it, else Prometheus text) and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


def new_metrics() -> Metrics:
    """A fresh registry with every Sandgate metric and the process, GC and platform collectors."""
    registry = CollectorRegistry()
    for collector in (ProcessCollector, GCCollector, PlatformCollector):
        collector(registry=registry)
    return Metrics(
        registry=registry,
        sessions=_session_metrics(registry),
        audit=_audit_metrics(registry),
        ext_authz_checks=Counter("sandgate_ext_authz_checks_total", "ext_authz checks", ["reason"], registry=registry),
        ext_authz_seconds=Histogram(
            "sandgate_ext_authz_check_seconds",
            "Time to answer one ext_authz check",
            buckets=FAST_BUCKETS,
            registry=registry,
        ),
        sandbox_exits=Counter("sandgate_sandbox_exits_total", "Sandboxes that died", ["cause"], registry=registry),
        admin_write_ack_seconds=Histogram(
            "sandgate_admin_write_ack_seconds",
            "From an admin write with ?wait=applied to every Envoy's ACK",
            ["write"],
            buckets=FAST_BUCKETS,
            registry=registry,
        ),
        xds_nacks=Counter("sandgate_xds_nacks_total", "xDS responses Envoy rejected", ["type_url"], registry=registry),
    )


def _session_metrics(registry: CollectorRegistry) -> SessionMetrics:
    return SessionMetrics(
        create_seconds=Histogram(
            "sandgate_session_create_seconds",
            "From CreateSession to READY",
            ["start"],
            buckets=SLOW_BUCKETS,
            registry=registry,
        ),
        created=Counter("sandgate_sessions_created_total", "Sessions created", ["start"], registry=registry),
        create_failures=Counter(
            "sandgate_session_create_failures_total", "CreateSession calls that failed", ["reason"], registry=registry
        ),
        deleted=Counter("sandgate_sessions_deleted_total", "Sessions ended", ["reason"], registry=registry),
        exec_seconds=Histogram(
            "sandgate_exec_seconds", "Duration of Exec calls", buckets=SLOW_BUCKETS, registry=registry
        ),
    )


def _audit_metrics(registry: CollectorRegistry) -> AuditMetrics:
    return AuditMetrics(
        decisions=Counter("sandgate_decisions_total", "Egress decisions", ["verdict", "reason"], registry=registry),
        lag_seconds=Histogram(
            "sandgate_audit_lag_seconds",
            "From a request's end in Envoy to its decision entry",
            buckets=SLOW_BUCKETS,
            registry=registry,
        ),
        lost=Counter("sandgate_audit_entries_lost_total", "Decision entries not kept", ["reason"], registry=registry),
    )
