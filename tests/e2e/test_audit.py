"""Every decision is logged by Envoy's access-log service: a scripted run shows up exactly, within 1 s."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from tests.e2e.conftest import SandgateClient
from tests.support.metrics import sample, scrape
from tests.support.upstream import Upstream


def decisions(client: SandgateClient, session_id: str) -> list[dict[str, object]]:
    status, body = client.proc.admin("GET", f"/v1/decisions?session_id={session_id}&limit=100")
    assert status == 200
    return list(reversed(body["decisions"]))  # oldest first


def wait_for(client: SandgateClient, session_id: str, count: int, timeout: float = 5) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while len(found := decisions(client, session_id)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def test_scripted_run_matches_the_audit_log_exactly(
    client: SandgateClient, http_upstream: Upstream, tls_upstream: Upstream
) -> None:
    hp, tp = http_upstream.port, tls_upstream.port
    s = client.create(egress=[{"host": "allowed.test", "ports": [hp]}, {"host": "secure.test", "ports": [tp]},
                              {"host": "loop2.test", "ports": [hp]}])  # fmt: skip
    c, a = "curl -s -o /dev/null", "allowed.test"
    script = [
        (f"{c} http://{a}:{hp}/a", ("GET", a, hp, "allow", "allowed", 200)),
        (f"{c} -X POST -d x http://{a}:{hp}/b", ("POST", a, hp, "allow", "allowed", 200)),
        (f"{c} http://other.test:{hp}/", ("GET", "other.test", hp, "deny", "host-not-allowed", 403)),
        (f"{c} -k https://secure.test:{tp}/", ("CONNECT", "secure.test", tp, "allow", "allowed", 200)),
        (f"{c} -k https://other.test:{tp}/", ("CONNECT", "other.test", tp, "deny", "host-not-allowed", 403)),
        (f"{c} http://loop2.test:{hp}/", ("GET", "loop2.test", hp, "deny", "destination-ip-forbidden", 403)),
        (f"{c} -x http://u:bad@127.0.0.1:3128 http://{a}:{hp}/", ("GET", a, hp, "deny", "token-invalid", 407)),
    ]
    started = time.monotonic()
    for command, _ in script:
        client.sh(s.id, command)
    found = wait_for(client, s.id, len(script))
    assert time.monotonic() - started < 10
    got = [(d["method"], d["host"], d["port"], d["verdict"], d["reason"], d["response_code"]) for d in found]
    assert got == [expected for _, expected in script]
    assert all(d["session_id"] == s.id and d["duration_ms"] >= 0 for d in found)
    allowed_get = found[0]
    assert int(str(allowed_get["bytes_received"])) > 0 and int(str(allowed_get["bytes_sent"])) > 0


def test_decision_appears_within_a_second_and_streams_live(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    proc = client.proc
    seen: list[dict[str, object]] = []
    following = threading.Event()

    def follow() -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{proc.admin_port}/v1/decisions?session_id={s.id}")
        req.add_header("Authorization", f"Bearer {proc.admin_token}")
        req.add_header("Accept", "text/event-stream")
        with urllib.request.urlopen(req, timeout=10) as resp:
            following.set()  # the stream's headers are here: the server follows from now on
            for line in resp:
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:]))
                    return

    follower = threading.Thread(target=follow)
    follower.start()
    assert following.wait(5)
    client.sh(s.id, f"curl -s -o /dev/null http://other.test:{http_upstream.port}/")
    done = time.monotonic()
    wait_for(client, s.id, 1, timeout=1.0)
    assert time.monotonic() - done < 1.0
    follower.join(5)
    assert seen and seen[0]["reason"] == "host-not-allowed"


def test_decisions_are_counted_in_metrics(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=[])
    client.sh(s.id, f"curl -s -o /dev/null http://other.test:{http_upstream.port}/")
    wait_for(client, s.id, 1)
    counted = sample(
        scrape(client.proc.admin_port), "sandgate_decisions_total", verdict="deny", reason="host-not-allowed"
    )
    assert counted is not None and counted >= 1


def test_report_mode_passes_and_records_would_deny(
    client: SandgateClient, http_upstream: Upstream, tls_upstream: Upstream
) -> None:
    hp, tp = http_upstream.port, tls_upstream.port
    s = client.create(egress=[{"host": "allowed.test", "ports": [hp], "methods": ["GET"]}, {"host": "loop2.test"}],
                      report_only=True)  # fmt: skip
    assert client.get(s.id).report_only
    c = "curl -s -o /dev/null -w '%{http_code} '"
    _, out, _ = client.sh(
        s.id,
        f"{c} http://other.test:{hp}/; {c} -X POST -d x http://allowed.test:{hp}/; {c} -k https://other.test:{tp}/;"
        f" {c} http://loop2.test:{hp}/; {c} -x http://u:bad@127.0.0.1:3128 http://other.test:{hp}/",
    )
    # The allowlist's denials pass; forbidden addresses and bad tokens are still refused.
    assert out.split() == ["200", "200", "200", "403", "407"]
    found = wait_for(client, s.id, 5)
    got = [(d["method"], d["host"], d["verdict"], d["reason"]) for d in found]
    assert got == [
        ("GET", "other.test", "would_deny", "host-not-allowed"),
        ("POST", "allowed.test", "would_deny", "method-not-allowed"),
        ("CONNECT", "other.test", "would_deny", "host-not-allowed"),
        ("GET", "loop2.test", "deny", "destination-ip-forbidden"),
        ("GET", "other.test", "deny", "token-invalid"),
    ]
