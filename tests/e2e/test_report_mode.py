"""Report mode forwards what a session's allowlist would deny, and nothing that the global policy or the
forbidden ranges refuse: those hold on every port, for plain HTTP and tunnels alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import SandgateClient
from tests.e2e.test_resolved_addresses import Counting
from tests.support.dns import DnsServer
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

STATUS = (
    "curl -sS --noproxy '' {flags} -o /dev/null -D /tmp/h -w '%{{http_code}}/%{{http_connect}}' --max-time 10 {url}"
    "; echo; grep -i deny-reason /tmp/h"
)


@pytest.fixture()
def denied_by_policy(sandgate: SandgateProcess, dns: DnsServer) -> Iterator[str]:
    dns.records["denied.test"] = "127.0.0.1"
    assert sandgate.admin("PUT", "/v1/policy?wait=applied", {"deny": ["denied.test", "*.denied.test"]})[0] == 200
    try:
        yield "denied.test"
    finally:
        sandgate.admin("PUT", "/v1/policy?wait=applied", {})
        del dns.records["denied.test"]


def outcome(client: SandgateClient, sid: str, url: str, tunnel: bool) -> tuple[str, str]:
    _, out, _ = client.sh(sid, STATUS.format(flags="-p" if tunnel else "", url=url))
    status, _, reason = out.partition("\n")
    return status.strip(), reason.strip().split(": ")[-1]


@pytest.mark.parametrize("tunnel", [False, True], ids=["plain", "connect"])
def test_report_mode_keeps_the_global_deny_list_on_every_port(
    client: SandgateClient, http_upstream: Upstream, denied_by_policy: str, tunnel: bool
) -> None:
    with Counting("127.0.0.1") as other_port:
        s = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}], report_only=True)
        for host in ("denied.test", "www.denied.test", "DENIED.test."):
            status, reason = outcome(client, s.id, f"http://{host}:{other_port.port}/", tunnel)
            assert status.startswith(("403/", "000/403")), (host, status)
            assert reason == "destination-denied-by-policy", (host, reason)
        # What only the allowlist would deny is still forwarded in report mode.
        assert outcome(client, s.id, f"http://other.test:{other_port.port}/", tunnel)[0].startswith("200/")
    assert other_port.hits == 1


@pytest.mark.parametrize("tunnel", [False, True], ids=["plain", "connect"])
def test_report_mode_keeps_the_forbidden_ranges(client: SandgateClient, tunnel: bool) -> None:
    with Counting("127.0.0.2") as private:
        s = client.create(egress=[], report_only=True)
        status, reason = outcome(client, s.id, f"http://loop2.test:{private.port}/", tunnel)
    assert status.startswith(("403/", "000/403")) and reason == "destination-ip-forbidden", (status, reason)
    assert private.hits == 0
