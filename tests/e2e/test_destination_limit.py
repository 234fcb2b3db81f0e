"""Envoy keeps at most `max_destinations` destinations resolved at once, for all sessions together: beyond
that a new destination is an error that names the limit, and destinations already in use keep working."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import OwnSandgate
from tests.e2e.test_audit import decisions
from tests.support.dns import DnsServer
from tests.support.upstream import Upstream

LIMIT = 16


@pytest.fixture()
def many_names(dns: DnsServer) -> Iterator[list[str]]:
    names = [f"d{i}.many.test" for i in range(LIMIT + 4)]
    dns.records.update(dict.fromkeys(names, "127.0.0.1"))
    yield names
    for name in names:
        del dns.records[name]


def test_a_full_destination_table_names_the_limit(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream, many_names: list[str]
) -> None:
    proc, port = own_sandgate_with(max_destinations=LIMIT), http_upstream.port
    with proc.client() as c:
        victim = c.create(egress=[{"host": "allowed.test", "ports": [port]}])
        attacker = c.create(egress=[{"host": "*.many.test", "ports": [port]}])
        victim_url = f"http://allowed.test:{port}/"
        assert c.exec(victim.id, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", victim_url]).stdout == b"200"
        script = " ".join(
            f"curl -s -o /dev/null -D /tmp/h{i} -w '%{{http_code}} ' http://{name}:{port}/;"
            for i, name in enumerate(many_names)
        )
        codes = c.exec(attacker.id, ["sh", "-c", script + " cat /tmp/h*"], timeout_seconds=120).stdout.decode()
        statuses = codes.split()[: len(many_names)]
        assert statuses.count("503") >= 4 and set(statuses) <= {"200", "503"}, codes
        assert "x-sandgate-error: destination-limit" in codes.lower()
        # The victim's destination is already resolved: it keeps working.
        assert c.exec(victim.id, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", victim_url]).stdout == b"200"
        verdicts = {(d["verdict"], d["reason"]) for d in decisions_of(c, proc, attacker.id)}
        assert ("error", "destination-limit") in verdicts and ("allow", "destination-limit") not in verdicts


def decisions_of(c: object, proc: object, session_id: str) -> list[dict[str, object]]:
    class View:
        def __init__(self) -> None:
            self.proc = proc

    return decisions(View(), session_id)  # type: ignore[arg-type]
