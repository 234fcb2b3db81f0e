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


def test_https_through_connect_to_allowed_host(client: SandgateClient, tls_upstream: Upstream, test_ca) -> None:  # type: ignore[no-untyped-def]
    s = client.create(egress=allow(("secure.test", tls_upstream.port)))
    ca = test_ca[0].read_bytes()
    script = f"cat > /tmp/ca.pem && {CURL} --cacert /tmp/ca.pem https://secure.test:{tls_upstream.port}/tls"
    code, out, err = client.sh(s.id, script, stdin=ca)
    assert (code, out) == (0, "200"), err


def test_python_requests_works_with_no_flags(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=allow(("allowed.test", http_upstream.port)))
    code, out, err = client.sh(
        s.id,
        f"python3 -c \"import requests; print(requests.get('http://allowed.test:{http_upstream.port}/py').status_code)\"",
    )
    assert (code, out.strip()) == (0, "200"), err


def test_host_not_on_the_list_gets_403_with_reason(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=allow(("allowed.test", http_upstream.port)))
    _, out, _ = client.sh(s.id, f"{CURL} http://other.test:{http_upstream.port}/; cat /tmp/headers /tmp/body")
    assert out.startswith("403")
    assert "x-sandgate-deny-reason: host-not-allowed" in out
    assert "not allowed by the egress policy" in out and f"sandgate egress add {s.id}" in out


def test_connect_to_host_not_on_the_list_is_refused(client: SandgateClient, tls_upstream: Upstream) -> None:
    s = client.create(egress=allow(("allowed.test", 443)))
    code, out, err = client.sh(
        s.id, f"curl -sS -k -o /dev/null -w '%{{http_connect}}' https://other.test:{tls_upstream.port}/"
    )
    assert code != 0 and out == "403", err


def test_allowed_host_on_other_port_is_refused(
    client: SandgateClient, http_upstream: Upstream, tls_upstream: Upstream
) -> None:
    s = client.create(egress=allow(("allowed.test", http_upstream.port)))
    _, out, _ = client.sh(
        s.id, f"curl -sS -k -o /dev/null -w '%{{http_connect}}' https://allowed.test:{tls_upstream.port}/"
    )
    assert out == "403"
    _, out, _ = client.sh(s.id, f"{CURL} http://allowed.test:{tls_upstream.port}/")
    assert out == "403"


def test_wildcard_matches_subdomains_not_apex(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "*.wild.test", "ports": [http_upstream.port]}])
    _, sub, _ = client.sh(s.id, f"{CURL} http://api.wild.test:{http_upstream.port}/")
    _, apex, _ = client.sh(s.id, f"{CURL} http://wild.test:{http_upstream.port}/")
    assert (sub, apex) == ("200", "403")


def test_methods_rule_limits_plain_http(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port], "methods": ["GET", "HEAD"]}])
    url = f"http://allowed.test:{http_upstream.port}/"
    _, get, _ = client.sh(s.id, f"{CURL} {url}")
    _, post, _ = client.sh(s.id, f"{CURL} -X POST -d x=1 {url}; grep -i x-sandgate-deny-reason /tmp/headers")
    assert get == "200"
    assert post.startswith("403") and "method-not-allowed" in post
