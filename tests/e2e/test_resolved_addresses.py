"""The address that is checked is the address that is connected, whatever the DNS answer holds.

An attacker controls the zone of a name the session may reach, and answers with several addresses: one
it may reach, and one on this host or in private space. Every request and tunnel must either reach an
allowed address or be refused; none may reach the forbidden one, by load balancing, by a connection
fallback to the next address, or by re-resolution. The test upstreams live on loopback: 127.0.0.1 is the
tests' allowed "public" address (an exception in the test configuration), 127.0.0.2 is forbidden.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.e2e.test_audit import wait_for
from tests.support.dns import DnsServer
from tests.support.upstream import Upstream

ATTEMPTS = 12
# Prints one line per attempt: the HTTP status (or the CONNECT status) and the body's first 60 bytes.
PROBE = """
for i in $(seq {n}); do
  code=$(curl -sS --noproxy '' {flags} -o /tmp/body -w '%{{http_code}}/%{{http_connect}}' --max-time 10 {url})
  echo "$code $(head -c 60 /tmp/body | tr -d '\\n')"
done
"""


class Counting(Upstream):
    """An upstream that counts the requests it answered: the forbidden one must answer none."""

    def __init__(self, host: str, port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.hits = 0
        handler = self.server.RequestHandlerClass
        outer = self

        class Counted(handler):  # type: ignore[misc, valid-type]
            def _reply(self) -> None:
                outer.hits += 1
                super()._reply()

            do_GET = do_POST = do_HEAD = do_CONNECT = _reply

        self.server.RequestHandlerClass = Counted


@pytest.fixture()
def two_faced(dns: DnsServer) -> Iterator[tuple[Upstream, Counting]]:
    """A public upstream on 127.0.0.1:P and a private one on 127.0.0.2:P, both named `twofaced.test`."""
    with Upstream() as public, Counting("127.0.0.2", public.port) as private:
        dns.records["twofaced.test"] = ["127.0.0.1", "127.0.0.2"]
        try:
            yield public, private
        finally:
            del dns.records["twofaced.test"]


def probe(client: SandgateClient, sid: str, url: str, tunnel: bool) -> list[str]:
    flags = "-p" if tunnel else ""
    _, out, _ = client.sh(sid, PROBE.format(n=ATTEMPTS, flags=flags, url=shlex.quote(url)))
    return out.splitlines()


@pytest.mark.parametrize("tunnel", [False, True], ids=["plain", "connect"])
def test_a_second_private_record_is_never_reached(
    client: SandgateClient, two_faced: tuple[Upstream, Counting], tunnel: bool
) -> None:
    public, private = two_faced
    s = client.create(egress=[{"host": "twofaced.test", "ports": [public.port]}])
    lines = probe(client, s.id, f"http://twofaced.test:{public.port}/", tunnel)
    assert len(lines) == ATTEMPTS, lines
    assert private.hits == 0, lines
    reached = [line for line in lines if line.startswith("200/")]
    refused = [line for line in lines if line.startswith(("403/", "000/403"))]
    assert len(reached) + len(refused) == ATTEMPTS, lines
    # Both records were really used: the check ran on the private one and refused it.
    assert reached and refused, lines
    # The decision log agrees with what happened: a refused request is never recorded as allowed.
    found = wait_for(client, s.id, ATTEMPTS)
    assert sorted((d["verdict"], d["reason"]) for d in found) == sorted(
        [("allow", "allowed")] * len(reached) + [("deny", "destination-ip-forbidden")] * len(refused)
    )


@pytest.mark.parametrize("tunnel", [False, True], ids=["plain", "connect"])
def test_no_fallback_to_a_private_record_when_the_first_fails(
    client: SandgateClient, two_faced: tuple[Upstream, Counting], dns: DnsServer, tunnel: bool
) -> None:
    """Nothing listens on the allowed address; a connection fallback to the next record must not happen."""
    _, private = two_faced
    with Counting("127.0.0.2") as lonely:
        dns.records["fallback.test"] = ["127.0.0.1", "127.0.0.2"]
        try:
            s = client.create(egress=[{"host": "fallback.test", "ports": [lonely.port]}])
            lines = probe(client, s.id, f"http://fallback.test:{lonely.port}/", tunnel)
        finally:
            del dns.records["fallback.test"]
    assert lonely.hits == 0 and private.hits == 0, lines
    assert all(line.split()[0] in {"403/000", "503/000", "000/403", "000/503"} for line in lines), lines


def test_host_services_are_unreachable_through_a_second_record(own_sandgate_with: OwnSandgate, dns: DnsServer) -> None:
    """With the default forbidden set (only a stand-in public address excepted), a second record of
    127.0.0.1 does not reach the control plane's admin API or its sessions API on this host (Envoy's admin and
    the control channel are unix sockets: test_control_channel.py)."""
    with Upstream(host="127.0.0.3") as public:
        proc = own_sandgate_with(forbidden_exceptions=["127.0.0.3/32"])
        dns.records["inside.test"] = ["127.0.0.3", "127.0.0.1"]
        try:
            with proc.client() as c:
                ports = [proc.admin_port, proc.grpc_port]
                s = c.create(egress=[{"host": "inside.test", "ports": ports}])
                script = "\n".join(
                    PROBE.format(n=6, flags=flags, url=f"http://inside.test:{port}/healthz")
                    for port in ports
                    for flags in ("", "-p")
                )
                result = c.exec(s.id, ["sh", "-c", script], timeout_seconds=120)
                c.delete(s.id)
        finally:
            del dns.records["inside.test"]
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 24, lines
    assert all(line.split()[0] in {"403/000", "503/000", "000/403", "000/503"} for line in lines), lines
    assert public.port  # the stand-in public upstream was up all along


@pytest.fixture()
def late_address() -> Iterator[str]:
    """An address added to this host after the control plane started, on a veth pair of the test's own."""
    name, address = f"sglate{os.getpid() % 100000}", "198.18.77.7"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield address
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_an_address_added_to_the_host_later_is_forbidden(
    own_sandgate_with: OwnSandgate, dns: DnsServer, request: pytest.FixtureRequest
) -> None:
    # Only this host's own addresses are forbidden here, so what refuses the request is the re-read list.
    proc = own_sandgate_with(forbidden_cidrs=["240.0.0.0/4"], forbidden_exceptions=[])
    address = request.getfixturevalue("late_address")
    with Counting(address) as service:
        dns.records["late.test"] = address
        try:
            with proc.client() as c:
                s = c.create(egress=[{"host": "late.test", "ports": [service.port]}])
                deadline = time.monotonic() + 10
                while True:
                    lines = probe_client(c, s.id, f"http://late.test:{service.port}/")
                    if lines[0].startswith("403/"):
                        break
                    assert time.monotonic() < deadline, lines
                    time.sleep(0.5)
                c.delete(s.id)
        finally:
            del dns.records["late.test"]
    assert service.hits == 0


def probe_client(c: object, sid: str, url: str) -> list[str]:
    result = c.exec(sid, ["sh", "-c", PROBE.format(n=1, flags="", url=url)], timeout_seconds=30)  # type: ignore[attr-defined]
    return list(result.stdout.decode().splitlines())


@pytest.mark.parametrize("tunnel", [False, True], ids=["plain", "connect"])
def test_an_aaaa_answer_is_checked_too(client: SandgateClient, dns: DnsServer, tunnel: bool) -> None:
    """A name with only an AAAA record for this host's IPv6 loopback: refused by the check, not by chance."""
    dns.records["sixonly.test"] = ["::1"]
    try:
        s = client.create(egress=[{"host": "sixonly.test", "ports": [8080]}])
        lines = probe(client, s.id, "http://sixonly.test:8080/", tunnel)
    finally:
        del dns.records["sixonly.test"]
    assert all(line.startswith(("403/", "000/403")) for line in lines), lines
