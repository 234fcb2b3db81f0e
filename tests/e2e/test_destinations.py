"""Destination checks after DNS: an allowlisted name that resolves into a forbidden range is refused."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.support.dns import DnsServer
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

# --noproxy '': NO_PROXY names 127.0.0.1, and these requests must go through the proxy all the same.
STATUS_AND_REASON = (
    "curl -sS --noproxy '' -o /dev/null -D /tmp/h -w '%{http_code}' --max-time 10 URL; echo; grep -i deny-reason /tmp/h"
)


def fetch(client: SandgateClient, sid: str, url: str) -> tuple[str, str]:
    _, out, _ = client.sh(sid, STATUS_AND_REASON.replace("URL", url))
    status, _, reason = out.partition("\n")
    return status, reason.strip().split(": ")[-1] if reason.strip() else ""


def tunnel(client: SandgateClient, sid: str, host: str, port: int) -> str:
    _, out, _ = client.sh(sid, f"curl -sS -k --noproxy '' -o /dev/null -w '%{{http_connect}}' https://{host}:{port}/")
    return out


@pytest.mark.parametrize("name", ["loop2.test", "private.test"])
def test_allowlisted_name_resolving_to_forbidden_address_is_denied(
    client: SandgateClient, http_upstream: Upstream, outside_host: str, name: str
) -> None:
    s = client.create(egress=[{"host": name, "ports": [http_upstream.port, 8080]}])
    port = 8080 if name == "private.test" else http_upstream.port
    assert fetch(client, s.id, f"http://{name}:{port}/") == ("403", "destination-ip-forbidden")
    assert tunnel(client, s.id, name, port) == "403"


def test_dns_rebinding_to_a_forbidden_address_is_denied(
    client: SandgateClient, http_upstream: Upstream, dns: DnsServer
) -> None:
    s = client.create(egress=[{"host": "rebind.test", "ports": [http_upstream.port]}])
    url = f"http://rebind.test:{http_upstream.port}/"
    assert fetch(client, s.id, url) == ("200", "")
    dns.records["rebind.test"] = "127.0.0.2"  # the attacker re-points the name
    try:
        deadline = time.monotonic() + 15
        while (got := fetch(client, s.id, url)) != ("403", "destination-ip-forbidden"):
            assert got == ("200", "") and time.monotonic() < deadline, got
            time.sleep(0.5)
    finally:
        dns.records["rebind.test"] = "127.0.0.1"


@pytest.fixture()
def default_policy_sandgate(own_sandgate_with: OwnSandgate) -> SandgateProcess:
    return own_sandgate_with(forbidden_exceptions=[])


def test_default_policy_denies_the_test_upstreams_on_loopback(
    default_policy_sandgate: SandgateProcess, http_upstream: Upstream
) -> None:
    client = SandgateClient(default_policy_sandgate)
    try:
        s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
        assert fetch(client, s.id, f"http://allowed.test:{http_upstream.port}/") == ("403", "destination-ip-forbidden")
        assert tunnel(client, s.id, "allowed.test", http_upstream.port) == "403"
    finally:
        client.cleanup()


def test_cidr_rule_allows_its_addresses_and_forbidden_ranges_still_apply(
    client: SandgateClient, http_upstream: Upstream, tls_upstream: Upstream
) -> None:
    hp, tp = http_upstream.port, tls_upstream.port
    s = client.create(egress=[{"host": "127.0.0.0/30", "ports": [hp, tp]}])
    assert [r.host for r in s.egress] == ["127.0.0.0/30"]
    assert fetch(client, s.id, f"http://127.0.0.1:{hp}/") == ("200", "")  # the tests' loopback exception
    assert tunnel(client, s.id, "127.0.0.1", tp) == "200"
    assert fetch(client, s.id, f"http://127.0.0.2:{hp}/") == ("403", "destination-ip-forbidden")
    assert fetch(client, s.id, f"http://127.0.0.5:{hp}/") == ("403", "host-not-allowed")
