"""From inside a real gVisor sandbox: allowed destinations pass, everything else is refused."""

from __future__ import annotations

import json

from tests.e2e.conftest import SandgateClient
from tests.support.upstream import Upstream

CURL = "curl -sS -o /tmp/body -D /tmp/headers -w '%{http_code}' --max-time 20"


def allow(*hosts_ports: tuple[str, int]) -> list[dict[str, object]]:
    return [{"host": h, "ports": [p]} for h, p in hosts_ports]


def test_session_is_ready_with_loopback_only(client: SandgateClient) -> None:
    s = client.create(egress=allow(("allowed.test", 80)))
    assert s.state == 2  # READY
    assert s.token and s.proxy_url == "http://127.0.0.1:3128"
    code, out, _ = client.sh(s.id, "ip -o link")
    assert code == 0
    interfaces = {line.split(":")[1].strip() for line in out.splitlines() if line.strip()}
    assert interfaces == {"lo"}, out
    code, out, _ = client.sh(s.id, "ip route; ip -6 route")
    assert all(" dev lo " in line for line in out.splitlines() if line.strip()), out
    assert client.get(s.id).token == "", "the token is returned only by CreateSession"


def test_allowed_plain_http_passes_and_token_stays_inside(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=allow(("allowed.test", http_upstream.port)))
    code, out, err = client.sh(s.id, f"{CURL} http://allowed.test:{http_upstream.port}/hello; echo; cat /tmp/body")
    status, body = out.split("\n", 1)
    assert (code, status) == (0, "200"), err
    seen = json.loads(body)
    assert seen["path"] == "/hello"
    assert "proxy-authorization" not in seen["headers"]
    assert "x-sandgate-token" not in seen["headers"]
    assert s.token not in body
