"""Operators change a running sandbox's allowlist: enforced on the next request, nothing restarts,
other sessions' open connections are untouched."""

from __future__ import annotations

import threading

import docker

from tests.e2e.conftest import SandgateClient
from tests.support.upstream import Upstream

KEEPALIVE = """
import base64, http.client, os, sys, time
token = open('/run/sandgate/token').read()
auth = 'Basic ' + base64.b64encode(('sandgate:' + token).encode()).decode()
conn = http.client.HTTPConnection('127.0.0.1', 3128, timeout=10)
conn.connect()
first = conn.sock

def get():
    conn.request('GET', sys.argv[1], headers={'Proxy-Authorization': auth})
    resp = conn.getresponse()
    resp.read()
    return resp.status, conn.sock is first
"""
LOOP = (
    KEEPALIVE
    + """
statuses, same, deadline = set(), True, time.time() + float(sys.argv[2])
while time.time() < deadline:
    status, still = get()
    statuses.add(status)
    same = same and still
    time.sleep(0.02)
print(sorted(statuses), same)
"""
)
STEP = (
    KEEPALIVE
    + """
print(get(), flush=True)
while not os.path.exists('/tmp/go'):
    time.sleep(0.01)
print(get(), flush=True)
"""
)


def curl(client: SandgateClient, sid: str, url: str) -> str:
    return client.sh(sid, f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 {url}")[1]


def test_allow_then_remove_live_without_restart(
    client: SandgateClient, http_upstream: Upstream, docker_client: docker.DockerClient
) -> None:
    proc = client.proc
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    url = f"http://other.test:{http_upstream.port}/"
    started = docker_client.containers.get(f"sandgate-{s.id}").attrs["State"]["StartedAt"]
    envoy_pid = (proc.state_dir / "envoy.pid").read_text()
    assert curl(client, s.id, url) == "403"
    rule = {"host": "other.test", "ports": [http_upstream.port]}
    status, _ = proc.admin("POST", f"/v1/sessions/{s.id}/egress?wait=applied", rule)
    assert status == 201
    assert "other.test" in proc.envoy_admin("/config_dump?resource=dynamic_route_configs")  # applied before answering
    assert curl(client, s.id, url) == "200"
    status, _ = proc.admin("DELETE", f"/v1/sessions/{s.id}/egress/other.test?wait=applied")
    assert status == 200
    assert curl(client, s.id, url) == "403"
    assert docker_client.containers.get(f"sandgate-{s.id}").attrs["State"]["StartedAt"] == started
    assert (proc.state_dir / "envoy.pid").read_text() == envoy_pid


def test_removing_a_rule_cuts_an_open_keepalive_connection(client: SandgateClient, http_upstream: Upstream) -> None:
    proc = client.proc
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    stream = client.exec_stream(s.id, ["python3", "-c", STEP, f"http://allowed.test:{http_upstream.port}/"])
    first = next(stream)
    assert first.stdout.strip() == b"(200, True)", first
    assert proc.admin("DELETE", f"/v1/sessions/{s.id}/egress/allowed.test?wait=applied")[0] == 200
    client.sh(s.id, "touch /tmp/go")
    rest = b"".join(chunk.stdout for chunk in stream)
    assert rest.strip() == b"(403, True)"  # same connection, next request refused


def test_other_sessions_keepalive_survives_100_changes(client: SandgateClient, http_upstream: Upstream) -> None:
    proc = client.proc
    rules = [{"host": "allowed.test", "ports": [http_upstream.port]}]
    a, b = client.create(egress=rules), client.create(egress=rules)
    result: dict[str, str] = {}

    def hold_connection() -> None:
        out = client.exec(b.id, ["python3", "-c", LOOP, f"http://allowed.test:{http_upstream.port}/", "15"])
        result["out"] = out.stdout.decode() + out.stderr.decode()

    holder = threading.Thread(target=hold_connection)
    holder.start()
    for i in range(100):
        body = {"egress": [*rules, {"host": f"h{i}.allowed.test"}]}
        assert proc.admin("PUT", f"/v1/sessions/{a.id}/egress?wait=applied", body)[0] == 200
    holder.join(60)
    assert result["out"].strip() == "[200] True", result


def test_policy_deny_overrides_a_session_rule(client: SandgateClient, http_upstream: Upstream) -> None:
    proc = client.proc
    s = client.create(egress=[{"host": "*.wild.test", "ports": [http_upstream.port]}])
    url = f"http://api.wild.test:{http_upstream.port}/"
    assert curl(client, s.id, url) == "200"
    try:
        assert proc.admin("PUT", "/v1/policy?wait=applied", {"deny": ["api.wild.test"]})[0] == 200
        _, out, _ = client.sh(s.id, f"curl -sS -D - -o /dev/null {url}")
        assert out.startswith("HTTP/1.1 403") and "x-sandgate-deny-reason: destination-denied-by-policy" in out
    finally:
        proc.admin("PUT", "/v1/policy?wait=applied", {})
    assert curl(client, s.id, url) == "200"
