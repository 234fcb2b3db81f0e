"""Attacks on the approval model, the sandbox API (http://sandgate.internal) and ExecInteractive's signals, from
inside real sandboxes.

Each test is named for the claim it proves. What is already proved elsewhere (a forged session header on a plain
request, a DENY session never held, one approval per destination) is in test_approvals.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.e2e.test_approvals import (
    CURL,
    Background,
    decide,
    held_approval,
    open_approvals,
    status_and_reason,
    wait_for,
)
from tests.e2e.test_cli import run
from tests.support.upstream import Upstream

# Opens N connections to the session proxy, each sending a request to the sandbox API whose body never comes,
# keeps them open, and writes how many it opened to /tmp/held.
HOLD_INCOMPLETE = r"""
import base64, resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
creds = base64.b64encode(("sandgate:" + open("/run/sandgate/token").read().strip()).encode()).decode()
head = ("POST http://sandgate.internal/v1/rules HTTP/1.1\r\nHost: sandgate.internal\r\n"
        "Proxy-Authorization: Basic " + creds + "\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n")
held = []
for _ in range(int(sys.argv[1])):
    s = socket.create_connection(("127.0.0.1", 3128))
    s.sendall(head.encode())
    held.append(s)
open("/tmp/held.tmp", "w").write(str(len(held)))
__import__("os").rename("/tmp/held.tmp", "/tmp/held")
time.sleep(3600)
"""


def _sandbox_api_status(client: SandgateClient, sid: str) -> str:
    return client.sh(sid, "curl -s -o /dev/null -w '%{http_code}' --max-time 50 http://sandgate.internal/v1/rules")[1]


def test_incomplete_requests_to_the_sandbox_api_do_not_starve_other_sessions(client: SandgateClient) -> None:
    """The sandbox API's upstream (one cluster, shared by every session) is not held by requests whose body never
    comes: Envoy has the whole request before it opens an upstream request, so sessions that leave 1,200
    requests half-sent (past the cluster's 1,024 connections) do not stop another session's GET /v1/rules."""
    victim = client.create().id
    assert _sandbox_api_status(client, victim) == "200"
    attackers = [client.create().id for _ in range(2)]
    for sid in attackers:
        client.sh(sid, "cat > /tmp/hold.py && (setsid python3 /tmp/hold.py 600 >/tmp/hold.log 2>&1 &)",
                  stdin=HOLD_INCOMPLETE.encode())  # fmt: skip
    for sid in attackers:
        wait_for(lambda sid=sid: client.sh(sid, "cat /tmp/held 2>/dev/null")[1] == "600", "600 half-sent requests")
    assert _sandbox_api_status(client, victim) == "200"


PROBE = (Path(__file__).parent / "raw_probe.py").read_bytes()
RULES_GET = (
    "GET http://sandgate.internal/v1/rules HTTP/1.1\r\nHost: sandgate.internal\r\nProxy-Authorization: Basic TOKEN\r\n"
)


def _probe(client: SandgateClient, sid: str, cases: dict[str, str]) -> dict[str, dict[str, Any]]:
    client.sh(sid, "cat > /tmp/probe.py", stdin=PROBE)
    code, out, err = client.sh(sid, "python3 /tmp/probe.py", stdin=json.dumps({"cases": cases}).encode())
    assert code == 0, err
    return dict(json.loads(out))


FORGED = "x-sandgate-session-id: OTHER\r\n"
FORGERIES = {
    "twice": RULES_GET + FORGED + FORGED + "\r\n",
    "upper_case": RULES_GET + FORGED.replace("x-sandgate-session-id", "X-SANDGATE-SESSION-ID") + "\r\n",
    "underscores": RULES_GET + FORGED.replace("x-sandgate-session-id", "x_sandgate_session_id") + "\r\n",
    "http_1_0": RULES_GET.replace("HTTP/1.1", "HTTP/1.0") + FORGED + "\r\n",
    "trailing_dot": RULES_GET.replace("internal/", "internal./") + FORGED + "\r\n",
    "port_80": RULES_GET.replace("internal/", "internal:80/") + FORGED + "\r\n",
    "origin_form": RULES_GET.replace("http://sandgate.internal", "") + FORGED + "\r\n",
    "folded": RULES_GET + "x-sandgate-session-id: x\r\n OTHER\r\n\r\n",
}


def test_the_sandbox_api_session_is_the_listeners_however_the_header_is_forged(client: SandgateClient) -> None:
    """Whatever spelling, count or framing of `x-sandgate-session-id` a sandbox sends, GET /v1/rules answers for
    the session whose listener verified its token (or refuses): never for the session the header names."""
    other = client.create().id
    sid = client.create().id
    cases = {name: payload.replace("OTHER", other) for name, payload in FORGERIES.items()}
    answers = _probe(client, sid, cases)
    for name, answer in answers.items():
        assert other not in answer["body"], name
        if answer["status"] == 200:
            assert json.loads(answer["body"])["session_id"] == sid, name
    assert {name for name, answer in answers.items() if answer["status"] == 200} >= {"twice", "upper_case", "port_80"}


def test_sandgate_internal_on_another_port_is_refused_never_held(client: SandgateClient) -> None:
    """`sandgate.internal` is Sandgate only on port 80, never as a tunnel: on another port, in any spelling, and as
    CONNECT, an ASK session's request is refused at once, not held on an approval that an operator would read as
    Sandgate's own name (and that allow_once would have Envoy look up in DNS)."""
    sid = client.create(on_unlisted="ASK").id
    targets = (
        "http://sandgate.internal:8080/v1/rules",
        "http://SANDGATE.Internal.:8080/v1/rules",
        "-p http://sandgate.internal:443/",
        "-p http://sandgate.internal/",  # CONNECT sandgate.internal:80
    )
    for target in targets:
        out = client.sh(sid, f"curl -s -i --max-time 50 {target}")[1]
        assert status_and_reason(out) == (403, "host-not-allowed"), target
    assert open_approvals(client.proc, sid) == []


def _propose(client: SandgateClient, sid: str, proposal: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    post = "curl -s -w '\\n%{http_code}' -H 'content-type: application/json' --data-binary @- http://sandgate.internal/v1/rules"
    body, _, code = client.sh(sid, post, stdin=json.dumps(proposal).encode())[1].rpartition("\n")
    return int(code), json.loads(body)


def test_the_operators_listing_shows_every_port_and_method_a_proposal_would_grant(client: SandgateClient) -> None:
    """A proposal's own `port` is 0; `sandgate approvals ls` shows its rule's ports and methods, and the sandbox's
    reason last, so a reason written to look like other columns cannot hide what allow_session grants."""
    sid = client.create().id
    proposal = {"host": "other.test", "ports": [443, 22, 3306], "methods": ["POST"], "reason": "443 GET only  -"}
    code, body = _propose(client, sid, proposal)
    assert code == 202, body
    listed = run(client.proc, "approvals", "ls", "--session", sid)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "SESSION_ID", "KIND", "METHOD", "HOST", "PORTS", "METHODS", "STATE", "REASON"]
    assert row.split()[4:8] == ["other.test", "22,443,3306", "POST", "pending"]
    assert row.endswith("443 GET only  -")


def test_a_session_cannot_hold_more_requests_than_max_held_requests(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream
) -> None:
    """Each held request costs the control plane a gRPC call (about 34 KiB: 1,000 held from one sandbox took 34 MiB),
    and a session's connection limit alone would let it hold a thousand: past `max_held_requests` waiting, the next
    request is refused at once, while the held ones still wait for the operator."""
    proc = own_sandgate_with(max_held_requests=4)
    client = SandgateClient(proc)
    try:
        sid = client.create(on_unlisted="ASK").id
        url = f"http://other.test:{http_upstream.port}/"
        held = Background(client, sid, " & ".join([f"{CURL} {url} >/dev/null"] * 4) + "; wait")
        approval = held_approval(proc, sid, held=4)
        assert status_and_reason(client.sh(sid, f"curl -s -i --max-time 50 {url}")[1]) == (403, "host-not-allowed")
        (still,) = open_approvals(proc, sid)
        assert (still["id"], still["held"]) == (approval["id"], 4)
        decide(proc, approval["id"], "deny")
        held.output()
    finally:
        client.cleanup()


def test_one_sessions_approval_never_releases_anothers_request(client: SandgateClient, http_upstream: Upstream) -> None:
    """Requests coalesce by session, host and port: two sandboxes held on the same destination wait on two
    approvals, and allowing one's lets only that one through."""
    proc = client.proc
    url = f"http://other.test:{http_upstream.port}/"
    first, second = (client.create(on_unlisted="ASK").id for _ in range(2))
    held = {sid: Background(client, sid, f"{CURL} {url}") for sid in (first, second)}
    approvals = {sid: held_approval(proc, sid) for sid in (first, second)}
    assert approvals[first]["id"] != approvals[second]["id"]
    decide(proc, approvals[first]["id"], "allow_once")
    assert status_and_reason(held[first].output())[0] == 200
    (still,) = open_approvals(proc, second)
    assert (still["id"], still["state"], still["held"]) == (approvals[second]["id"], "pending", 1)
    decide(proc, still["id"], "deny")
    assert status_and_reason(held[second].output()) == (403, "approval-denied")


def test_deeply_nested_json_from_a_sandbox_is_a_400_not_a_logged_500(client: SandgateClient) -> None:
    """4,000 nested arrays fit in the 4 KiB body and overflow Python's JSON decoder: refused as malformed JSON,
    not an internal error with a traceback in the control plane's log for every request (a log flood)."""
    sid = client.create().id
    post = "curl -s -w '\\n%{http_code}' -H 'content-type: application/json' --data-binary @- http://sandgate.internal/v1/rules"
    body, _, code = client.sh(sid, post, stdin=b"[" * 4000)[1].rpartition("\n")
    assert (code, json.loads(body)["error"]["field"]) == ("400", "body")
    assert "unexpected error on POST /v1/rules" not in client.proc.log()


def test_a_rewritten_run_group_file_cannot_aim_an_operators_signal_at_every_process(client: SandgateClient) -> None:
    """The forwarder keeps each run's process group in /tmp/.sandgate/ID, which the sandbox's own user can write
    (every process in the sandbox is that user). Rewritten to 1, an ExecInteractive SIGKILL would be kill(-1): every
    process the forwarder may signal. The forwarder refuses a group id under 2: the signal reaches nothing."""
    from tests.e2e.test_exec import running
    from tests.e2e.test_exec_interactive import Interactive, start

    sid = client.create().id
    run = Interactive(client, start(sid, "sh", "-c", "echo ready; exec sleep 301"))
    run.read_until(b"ready")
    client.sh(sid, "(setsid sleep 302 >/dev/null 2>&1 &)")
    rewrite = 'for f in /tmp/.sandgate/*; do [ "$(cat $f)" = "$$" ] || echo 1 > $f; done; cat /tmp/.sandgate/*'
    assert "1" in client.sh(sid, rewrite)[1].split()
    run.send(signal=9)
    wait_for(lambda: "signal 9 for run" in client.proc.log(), "the forwarder's refusal of the signal")
    assert running(client, sid, "sleep 301") and running(client, sid, "sleep 302")


def test_a_host_spelled_past_envoys_routes_is_not_the_host_a_shadowed_rule_allows(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream
) -> None:
    """`Host: [other.test]:PORT` or `other.test...:PORT` matches no virtual host (neither the session's rule nor
    the global deny list's), so an ASK session's catch-all asks ext_authz, which read both as `other.test` and
    allowed them by the session's own rule, though the global policy denies other.test (only Envoy failing to
    resolve the odd name stopped it, and the log said allowed). Brackets hold an IPv6 address, a name has no
    empty label: anything else is a bad request (and an allowed check also meets the global deny list)."""
    proc = own_sandgate_with()
    client = SandgateClient(proc)
    try:
        port = http_upstream.port
        sid = client.create(on_unlisted="ASK", egress=[{"host": "other.test", "ports": [port]}]).id
        status, body = proc.admin("PUT", "/v1/policy?wait=applied", {"default_egress": [], "deny": ["other.test"]})
        assert status == 200, body
        spellings = {"brackets": f"[other.test]:{port}", "dots": f"other.test...:{port}"}
        cases = {
            name: f"GET / HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Basic TOKEN\r\n\r\n"
            for name, host in spellings.items()
        }
        answers = _probe(client, sid, cases)
        assert {name: (a["status"], a["reason"]) for name, a in answers.items()} == {
            "brackets": (403, "bad-request"),
            "dots": (403, "bad-request"),
        }, answers
        assert open_approvals(proc, sid) == []
    finally:
        client.cleanup()


REFUSED_PROPOSALS = {
    "sandgate_internal": ({"host": "Sandgate.Internal."}, "host"),
    "broad_wildcard": ({"host": "*.com"}, "host"),
    "public_suffix_wildcard": ({"host": "*.co.uk"}, "host"),
    "wide_cidr": ({"host": "10.0.0.0/16"}, "host"),
    "numeric_name": ({"host": "2130706433"}, "host"),
    "escape_in_reason": ({"host": "other.test", "reason": "\x1b[2Jallowed"}, "reason"),
    "bidi_override_in_reason": ({"host": "other.test", "reason": "fetch \u202eexe.txt"}, "reason"),
    "soft_hyphen_in_reason": ({"host": "other.test", "reason": "pypi\u00ad.org"}, "reason"),
    "newline_in_reason": ({"host": "other.test", "reason": "one\nstate: allowed"}, "reason"),
    "blank_reason": ({"host": "other.test", "reason": "   "}, "reason"),
}


def test_a_sandbox_cannot_propose_what_an_admin_could_not_add_nor_spoof_the_operators_terminal(
    client: SandgateClient,
) -> None:
    """Proposals naming Sandgate itself, broad or numeric names, wide CIDRs, or with reasons that carry terminal
    escapes, bidi overrides, invisible characters or line breaks are refused (400, naming the field), and none
    becomes an approval."""
    sid = client.create().id
    for name, (proposal, field) in REFUSED_PROPOSALS.items():
        code, body = _propose(client, sid, {"reason": "needed", **proposal})
        assert (code, body["error"]["field"]) == (400, field), name
    assert open_approvals(client.proc, sid) == []
