"""Path rules over plain HTTP: an allowed path reaches the host, any other gets 403 path-not-allowed."""

from __future__ import annotations

from tests.e2e.conftest import SandgateClient
from tests.e2e.test_audit import wait_for
from tests.e2e.test_request_shapes import outcome
from tests.support.upstream import Upstream


def test_paths_and_methods_on_plain_http(client: SandgateClient, http_upstream: Upstream) -> None:
    port = http_upstream.port
    rule = {"host": "allowed.test", "ports": [port], "methods": ["GET"], "paths": ["/repos/**", "/simple/*"]}
    s = client.create(egress=[rule])
    base = f"http://allowed.test:{port}"
    assert outcome(client, s.id, f"{base}/repos/a/b?q=1")[0] == "200/000"
    assert outcome(client, s.id, f"{base}/simple/requests")[0] == "200/000"
    assert outcome(client, s.id, f"{base}/simple/requests/x") == ("403/000", "path-not-allowed")
    assert outcome(client, s.id, f"{base}/admin") == ("403/000", "path-not-allowed")
    # Normalized before it is matched: a dot segment cannot climb out of an allowed prefix.
    assert outcome(client, s.id, f"{base}/repos/../admin", "--path-as-is") == ("403/000", "path-not-allowed")
    assert outcome(client, s.id, f"{base}/repos/x", "-X POST") == ("403/000", "method-not-allowed")
    # A tunnel would hide the path: refused unless the rule is inspected.
    assert outcome(client, s.id, f"{base}/repos/x", "-p") == ("000/403", "tunnel-not-inspectable")
    found = wait_for(client, s.id, 7)
    assert [d["reason"] for d in found] == [
        "allowed", "allowed", "path-not-allowed", "path-not-allowed", "path-not-allowed",
        "method-not-allowed", "tunnel-not-inspectable",
    ]  # fmt: skip


def test_paths_are_shown_and_stored(client: SandgateClient, http_upstream: Upstream) -> None:
    rule = {"host": "allowed.test", "ports": [http_upstream.port], "paths": ["/b/**", "/a"]}
    s = client.create(egress=[rule])
    got = client.get(s.id).egress[0]
    assert (list(got.paths), got.inspect, got.credential) == (["/a", "/b/**"], False, "")
