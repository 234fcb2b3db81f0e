"""The admin HTTP API against the running service (real servers and Envoy, the in-memory runtime): auth, every
route with good and bad input, atomicity."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from tests.support.service import SandgateClient, SandgateProcess

V1_ROUTES = [
    ("GET", "/v1/sessions"),
    ("GET", "/v1/sessions/s-0000000000000000"),
    ("DELETE", "/v1/sessions/s-0000000000000000"),
    ("GET", "/v1/sessions/s-0000000000000000/egress"),
    ("PUT", "/v1/sessions/s-0000000000000000/egress"),
    ("POST", "/v1/sessions/s-0000000000000000/egress"),
    ("DELETE", "/v1/sessions/s-0000000000000000/egress/a.test"),
    ("GET", "/v1/policy"),
    ("PUT", "/v1/policy"),
    ("GET", "/v1/decisions"),
]


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
@pytest.mark.parametrize("token", ["", "wrong"])
def test_v1_routes_need_the_admin_token(sandgate: SandgateProcess, method: str, path: str, token: str) -> None:
    status, body = sandgate.admin(method, path, {} if method in ("PUT", "POST") else None, token=token)
    assert status == 401 and body["error"]["code"] == "unauthenticated"


def test_open_routes(sandgate: SandgateProcess) -> None:
    assert sandgate.admin("GET", "/healthz", token="") == (200, {"status": "ok"})
    status, body = sandgate.admin("GET", "/readyz", token="")
    assert (status, body["ready"], body["envoy_connected"]) == (200, True, True)
    assert sandgate.admin("GET", "/openapi.json", token="")[1]["openapi"].startswith("3.")


def test_sessions_routes(client: SandgateClient) -> None:
    proc = client.proc
    s = client.create(labels={"suite": "admin"}, egress=[{"host": "allowed.test"}])
    status, body = proc.admin("GET", "/v1/sessions")
    assert status == 200 and s.id in {x["id"] for x in body["sessions"]}
    status, body = proc.admin("GET", f"/v1/sessions/{s.id}")
    assert (status, body["state"], body["labels"]) == (200, "READY", {"suite": "admin"})
    assert "token" not in body
    assert proc.admin("GET", "/v1/sessions/not-an-id")[1]["error"]["field"] == "session_id"
    assert proc.admin("GET", "/v1/sessions/s-0000000000000000")[0] == 404
    assert proc.admin("DELETE", f"/v1/sessions/{s.id}")[0] == 204
    assert proc.admin("DELETE", f"/v1/sessions/{s.id}")[0] == 204  # idempotent
    assert proc.admin("GET", f"/v1/sessions/{s.id}")[0] == 404


def test_egress_routes_good_input(client: SandgateClient) -> None:
    proc = client.proc
    s = client.create(egress=[{"host": "allowed.test", "ports": [80]}])
    path = f"/v1/sessions/{s.id}/egress"
    plain = {"methods": [], "paths": [], "inspect": False, "credential": ""}
    assert proc.admin("GET", path) == (200, {"egress": [{"host": "allowed.test", "ports": [80], **plain}]})
    status, body = proc.admin("POST", path, {"host": "xn--bcher-kva.example", "ports": [443]})
    assert status == 201 and {"host": "xn--bcher-kva.example", "ports": [443], **plain} in body["egress"]
    # The admin API takes a host in the one spelling its schema publishes: lower case, A-labels.
    assert proc.admin("POST", path, {"host": "Bücher.Example"})[1]["error"]["field"] == "host"
    status, body = proc.admin("PUT", path + "?wait=applied", {"egress": [{"host": "*.wild.test", "methods": ["GET"]}]})
    assert (status, body["applied"]) == (200, True)
    assert body["egress"] == [
        {"host": "*.wild.test", "ports": [80, 443], "methods": ["GET"], "paths": [], "inspect": False, "credential": ""}
    ]
    status, body = proc.admin("DELETE", path + "/*.wild.test?wait=applied")
    assert (status, body["egress"]) == (200, [])
    assert client.get(s.id).egress == []


BAD_WRITES: list[tuple[str, str, Any, dict[str, Any], int, str]] = [
    ("PUT", "", b"{not json", {}, 400, "body"),
    ("PUT", "", [], {}, 400, "body"),
    ("PUT", "", {"egress": [], "extra": 1}, {}, 400, "extra"),
    ("PUT", "", {"egress": "x"}, {}, 400, "egress"),
    ("PUT", "", {"egress": [{"host": "ok.test"}, {"host": "bad host"}]}, {}, 400, "egress[1].host"),
    ("PUT", "", {"egress": [{"host": "*"}]}, {}, 400, "egress[0].host"),
    ("PUT", "", {"egress": [{"host": "*.com"}]}, {}, 400, "egress[0].host"),
    ("PUT", "", {"egress": [{"host": "ok.test", "ports": [65536]}]}, {}, 400, "egress[0].ports[0]"),
    ("PUT", "", {"egress": []}, {"content_type": "text/plain"}, 400, "content-type"),
    ("PUT", "?wait=soon", {"egress": []}, {}, 400, "wait"),
    ("POST", "", {"host": "ok.test", "port": 80}, {}, 400, "port"),
    ("POST", "", {"host": "ok.test", "ports": [0]}, {}, 400, "ports[0]"),
    ("POST", "", {"host": "ok.test", "methods": ["get"]}, {}, 400, "methods[0]"),
    ("PUT", "", {"egress": [{"host": "a" * 60 + f"{i}.test"} for i in range(2000)]}, {}, 413, ""),
]


@pytest.mark.parametrize(("method", "suffix", "body", "kw", "status", "field"), BAD_WRITES)
def test_bad_writes_name_the_field_and_change_nothing(
    client: SandgateClient, method: str, suffix: str, body: Any, kw: dict[str, Any], status: int, field: str
) -> None:
    proc = client.proc
    s = client.create(egress=[{"host": "allowed.test"}])
    path = f"/v1/sessions/{s.id}/egress{suffix}"
    raw = body if isinstance(body, bytes) else None
    got, err = proc.admin(method, path, None if raw else body, raw=raw, **kw)
    assert got == status, err
    assert err["error"]["message"]
    if field:
        assert err["error"]["field"] == field
    assert proc.admin("GET", f"/v1/sessions/{s.id}/egress")[1]["egress"][0]["host"] == "allowed.test"
    assert len(proc.admin("GET", f"/v1/sessions/{s.id}/egress")[1]["egress"]) == 1


def test_egress_of_unknown_or_deleted_session(client: SandgateClient) -> None:
    proc = client.proc
    s = client.create()
    client.delete(s.id)
    for method, suffix, body in [("GET", "", None), ("PUT", "", {"egress": []}), ("POST", "", {"host": "a.test"}),
                                 ("DELETE", "/a.test", None)]:  # fmt: skip
        status, err = proc.admin(method, f"/v1/sessions/{s.id}/egress{suffix}", body)
        assert status == 404 and s.id in err["error"]["message"]
    live = client.create(egress=[{"host": "allowed.test"}])
    status, err = proc.admin("DELETE", f"/v1/sessions/{live.id}/egress/missing.test")
    assert (status, err["error"]["field"]) == (404, "host")


def test_policy_routes(client: SandgateClient) -> None:
    proc = client.proc
    try:
        status, body = proc.admin("PUT", "/v1/policy?wait=applied", {"default_egress": [{"host": "allowed.test"}],
                                                                     "deny": ["evil.test"]})  # fmt: skip
        assert status == 200 and body["deny"] == ["evil.test"]
        assert proc.admin("GET", "/v1/policy")[1]["default_egress"][0]["host"] == "allowed.test"
        s = client.create(egress=[{"host": "other.test"}])
        assert {r.host for r in s.egress} == {"allowed.test", "other.test"}
        bad_policies: list[tuple[Any, str]] = [
            ({"deny": "x"}, "deny"), ({"deny": ["bad host"]}, "deny[0]"), ({"x": 1}, "x"),
            ({"deny": ["ok.test", 5]}, "deny[1]"), ({"deny": ["ok.test", "10.0.0.1"]}, "deny[1]"),
        ]  # fmt: skip
        for bad, field in bad_policies:
            status, err = proc.admin("PUT", "/v1/policy", bad)
            assert (status, err["error"]["field"]) == (400, field)
    finally:
        proc.admin("PUT", "/v1/policy?wait=applied", {})


def test_decisions_route_validates_its_query(sandgate: SandgateProcess) -> None:
    assert sandgate.admin("GET", "/v1/decisions?limit=5")[0] == 200
    assert sandgate.admin("GET", "/v1/decisions?verdict=maybe")[1]["error"]["field"] == "verdict"
    assert sandgate.admin("GET", "/v1/decisions?limit=0")[1]["error"]["field"] == "limit"


def test_wait_applied_times_out_with_504_naming_what_is_pending(client: SandgateClient) -> None:
    proc = client.proc
    s = client.create(egress=[{"host": "allowed.test"}])
    envoy_pid = int((proc.state_dir / "envoy.pid").read_text())
    os.kill(envoy_pid, signal.SIGSTOP)  # Envoy stays connected but cannot ACK
    try:
        status, err = proc.admin("POST", f"/v1/sessions/{s.id}/egress?wait=applied&timeout=0.5", {"host": "b.test"})
    finally:
        os.kill(envoy_pid, signal.SIGCONT)
    assert status == 504 and err["error"]["code"] == "not_applied"
    assert f"session-{s.id}" in err["error"]["message"]
    # The write itself was kept and reaches Envoy once it can take it.
    status, body = proc.admin("PUT", f"/v1/sessions/{s.id}/egress?wait=applied", {"egress": [{"host": "b.test"}]})
    assert (status, body["applied"]) == (200, True)
