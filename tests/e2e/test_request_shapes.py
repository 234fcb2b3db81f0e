"""Request shapes that real clients send are decided as the same name, and what Envoy answers itself is
never recorded as an allow. See docs/COMPATIBILITY.md."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import SandgateClient
from tests.e2e.test_audit import wait_for
from tests.e2e.test_resolved_addresses import Counting
from tests.support.dns import DnsServer
from tests.support.upstream import Upstream

# Status (and the CONNECT status), then the deny-reason or error header, if any.
OUTCOME = (
    "curl -sS --noproxy '' {flags} -o /dev/null -D /tmp/h -w '%{{http_code}}/%{{http_connect}}' --max-time 10 '{url}'"
    "; echo; grep -iE 'x-sandgate-(deny-reason|error)' /tmp/h | tail -1"
)


def outcome(client: SandgateClient, sid: str, url: str, flags: str = "") -> tuple[str, str]:
    _, out, _ = client.sh(sid, OUTCOME.format(flags=flags, url=url))
    status, _, reason = out.partition("\n")
    return status.strip(), reason.strip().split(": ")[-1]


@pytest.fixture(scope="module")
def names(dns: DnsServer) -> Iterator[None]:
    dns.records["xn--bcher-kva.test"] = "127.0.0.1"
    dns.records["nowhere.test"] = []  # resolves to nothing
    yield
    del dns.records["xn--bcher-kva.test"], dns.records["nowhere.test"]


def test_http_10_requests_and_tunnels_are_accepted(
    client: SandgateClient, http_upstream: Upstream, tls_upstream: Upstream, test_ca: tuple[object, object]
) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]},
                              {"host": "secure.test", "ports": [tls_upstream.port]}])  # fmt: skip
    url = f"http://allowed.test:{http_upstream.port}/"
    assert outcome(client, s.id, url, "-0")[0] == "200/000"
    assert outcome(client, s.id, url, '--proxy1.0 "$HTTP_PROXY" -p')[0] == "200/200"
    # Python 3.11's http.client opens every tunnel with `CONNECT host:port HTTP/1.0`.
    client.exec(s.id, ["sh", "-c", "cat > /tmp/ca.pem"], stdin=test_ca[0].read_bytes())  # type: ignore[attr-defined]
    script = (
        "import ssl, urllib.request; ctx = ssl.create_default_context(cafile='/tmp/ca.pem'); "
        f"print(urllib.request.urlopen('https://secure.test:{tls_upstream.port}/', context=ctx).status)"
    )
    code, out, err = client.sh(s.id, f'python3 -c "{script}"')
    assert (code, out.strip()) == (0, "200"), err


@pytest.mark.parametrize("flags", ["", "-p"], ids=["plain", "connect"])
def test_every_spelling_of_an_allowed_name_is_that_name(
    client: SandgateClient, http_upstream: Upstream, names: None, flags: str
) -> None:
    port = http_upstream.port
    s = client.create(egress=[{"host": "allowed.test", "ports": [port]}, {"host": "bücher.test", "ports": [port]}])
    for host in ("allowed.test", "ALLOWED.Test", "allowed.test.", "ALLOWED.TEST.", "xn--bcher-kva.test"):
        assert outcome(client, s.id, f"http://{host}:{port}/", flags)[0].startswith("200/"), host
    for host in ("other.test", "OTHER.test.", "allowed.test.other.test"):
        assert outcome(client, s.id, f"http://{host}:{port}/", flags)[1] == "host-not-allowed", host


def test_a_method_limited_rule_cannot_be_tunnelled_around(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port], "methods": ["GET"]}])
    url = f"http://allowed.test:{http_upstream.port}/"
    assert outcome(client, s.id, url)[0] == "200/000"
    assert outcome(client, s.id, url, "-X POST") == ("403/000", "method-not-allowed")
    assert outcome(client, s.id, url, "-p -X POST") == ("000/403", "tunnel-not-inspectable")
    found = wait_for(client, s.id, 3)
    assert [(d["verdict"], d["reason"]) for d in found] == [
        ("allow", "allowed"), ("deny", "method-not-allowed"), ("deny", "tunnel-not-inspectable")
    ]  # fmt: skip


def test_upgrades_reach_an_allowed_host_or_get_a_labelled_deny(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    websocket = (
        "-H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: eA=='"
    )
    # The test upstream is no WebSocket server: it answers 200, which proves the upgrade reached it.
    assert outcome(client, s.id, f"http://allowed.test:{http_upstream.port}/", websocket)[0] == "200/000"
    assert outcome(client, s.id, f"http://other.test:{http_upstream.port}/", websocket) == (
        "403/000",
        "host-not-allowed",
    )
    other = "-H 'Connection: Upgrade' -H 'Upgrade: sandgate-test/1'"
    assert outcome(client, s.id, f"http://allowed.test:{http_upstream.port}/", other) == (
        "403/000", "upgrade-not-supported"
    )  # fmt: skip
    found = wait_for(client, s.id, 3)
    assert [(d["verdict"], d["reason"]) for d in found] == [
        ("allow", "allowed"), ("deny", "host-not-allowed"), ("deny", "upgrade-not-supported")
    ]  # fmt: skip


@pytest.mark.parametrize("flags", ["", "-p"], ids=["plain", "connect"])
def test_an_unreachable_upstream_is_an_error_never_an_allow(client: SandgateClient, names: None, flags: str) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [1]}, {"host": "nowhere.test", "ports": [80]}])
    for url in ("http://allowed.test:1/", "http://nowhere.test/"):
        status, reason = outcome(client, s.id, url, flags)
        assert status in {"503/000", "000/503"} and reason == "upstream-unreachable", (url, status, reason)
    found = wait_for(client, s.id, 2)
    assert [(d["verdict"], d["reason"]) for d in found] == [("error", "upstream-unreachable")] * 2


def test_the_proxy_is_transparent(client: SandgateClient, http_upstream: Upstream) -> None:
    """The upstream sees what the client sent, less the proxy credentials; the client sees what the upstream
    answered. Nothing of Envoy's own is added, and x-envoy-* headers from the sandbox are not obeyed."""
    s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    script = (
        "curl -s -D /tmp/h -H 'X-Custom_Name: 1' -H 'x-envoy-retry-on: 5xx' -H 'x-envoy-upstream-rq-timeout-ms: 1' "
        f"http://allowed.test:{http_upstream.port}/a//b%2Fc; echo; cat /tmp/h"
    )
    body, _, head = client.sh(s.id, script)[1].partition("\n")
    sent = json.loads(body)["headers"]
    assert sorted(sent) == ["accept", "host", "user-agent", "x-custom_name"], sent
    assert json.loads(body)["path"] == "/a//b%2Fc"
    assert sorted(line.split(":")[0].lower() for line in head.splitlines()[1:] if line.strip()) == [
        "content-length", "content-type", "date"
    ]  # fmt: skip


def test_an_https_url_sent_as_a_plain_request_is_refused_not_sent_in_clear(
    client: SandgateClient, tls_upstream: Upstream
) -> None:
    """`GET https://host/ HTTP/1.1` to the proxy (busybox wget does this) must not reach the host unencrypted."""
    s = client.create(egress=[{"host": "secure.test", "ports": [tls_upstream.port]}])
    script = (
        "python3 -c \"import socket,base64,os; s=socket.create_connection(('127.0.0.1',3128)); "
        "t=open('/run/sandgate/token').read().strip(); a=base64.b64encode(('x:'+t).encode()).decode(); "
        f"s.sendall(('GET https://secure.test:{tls_upstream.port}/secret HTTP/1.1\\r\\nHost: secure.test\\r\\n'"
        "+'Proxy-Authorization: Basic '+a+'\\r\\nConnection: close\\r\\n\\r\\n').encode()); "
        "print(s.recv(4096).decode(errors='replace'))\""
    )
    with Counting("127.0.0.1") as plain_listener:
        s2 = client.create(egress=[{"host": "allowed.test", "ports": [plain_listener.port]}])
        plain = script.replace(f"secure.test:{tls_upstream.port}", f"allowed.test:{plain_listener.port}")
        reply2 = client.sh(s2.id, plain)[1]
    reply = client.sh(s.id, script)[1]
    # Envoy refuses an https:// request on a plain connection before routing it: nothing is sent in clear.
    assert reply.startswith("HTTP/1.1 403") and reply2.startswith("HTTP/1.1 403"), (reply, reply2)
    assert plain_listener.hits == 0
    assert [(d["verdict"], d["reason"]) for d in wait_for(client, s.id, 1)] == [("deny", "bad-request")]
