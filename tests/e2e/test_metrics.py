"""/metrics after real work: a create, an Exec in a real sandbox, a denied request, a waited admin write."""

from __future__ import annotations

from tests.e2e.test_audit import wait_for
from tests.support.metrics import kinds, sample, scrape
from tests.support.service import SandgateClient
from tests.support.upstream import Upstream

HISTOGRAMS = [
    "sandgate_session_create_seconds",
    "sandgate_admin_write_ack_seconds",
    "sandgate_ext_authz_check_seconds",
    "sandgate_exec_seconds",
    "sandgate_audit_lag_seconds",
]


def test_metrics(client: SandgateClient, http_upstream: Upstream) -> None:
    """After a create, an Exec, a denied request and a waited admin write, each has its histogram sample."""
    before = scrape(client.proc.admin_port)
    s = client.create(egress=[])
    client.sh(s.id, f"curl -s -o /dev/null http://other.test:{http_upstream.port}/")
    status, _ = client.proc.admin("POST", f"/v1/sessions/{s.id}/egress?wait=applied", {"host": "a.test"})
    assert status == 201
    wait_for(client, s.id, 1)  # the denial is delivered and logged: its lag is observed
    client.delete(s.id)
    text = scrape(client.proc.admin_port)
    assert {name: kinds(text)[name] for name in HISTOGRAMS} == dict.fromkeys(HISTOGRAMS, "histogram")
    for name, labels in [
        ("sandgate_session_create_seconds_count", {"start": "cold"}),  # the shared stack has no warm pool
        ("sandgate_sessions_created_total", {"start": "cold"}),
        ("sandgate_exec_seconds_count", {}),
        ("sandgate_admin_write_ack_seconds_count", {"write": "egress"}),
        ("sandgate_audit_lag_seconds_count", {}),
        ("sandgate_sessions_deleted_total", {"reason": "requested"}),
    ]:
        assert (sample(text, name, **labels) or 0) > (sample(before, name, **labels) or 0), name
    assert sample(text, "sandgate_envoy_config_acked") == 1 and kinds(text)["sandgate_sessions"] == "gauge"
    assert sample(text, "process_resident_memory_bytes") and sample(text, "python_gc_collections_total") is not None
