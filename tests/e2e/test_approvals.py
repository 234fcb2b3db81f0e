"""Approvals from a real sandbox: with on_unlisted ASK a request no rule covers waits for an operator, who lets
it through once or for the session, or denies it; nobody deciding is a timeout. Requests for one destination
wait on one approval. A sandbox reads its rules and proposes one at http://sandgate.internal; nothing it
proposes is applied without an operator."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from control_plane.admin_client import AdminClient
from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.e2e.test_cli import run
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

WAIT_S = 90  # a generous bound for a condition on a loaded machine; never a timed assertion
CURL = "curl -s -i --max-time 120"

NO_INSPECTION = {"paths": [], "inspect": False, "credential": ""}  # what every rule shows besides


class Background:
    """A shell command in the sandbox, run on a thread: the test decides while it is held."""

    def __init__(self, client: SandgateClient, sid: str, script: str) -> None:
        self.result: tuple[int, str, str] | None = None
        self._thread = threading.Thread(target=self._run, args=(client, sid, script), daemon=True)
        self._thread.start()

    def _run(self, client: SandgateClient, sid: str, script: str) -> None:
        self.result = client.sh(sid, script)

    def output(self) -> str:
        self._thread.join(WAIT_S)
        assert self.result is not None, "the sandbox's command did not finish"
        return self.result[1]


def wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def open_approvals(proc: SandgateProcess, sid: str) -> list[dict[str, Any]]:
    status, body = proc.admin("GET", f"/v1/approvals?session_id={sid}")
    assert status == 200, body
    return list(body["approvals"])


def held_approval(proc: SandgateProcess, sid: str, held: int = 1) -> dict[str, Any]:
    found = wait_for(
        lambda: [a for a in open_approvals(proc, sid) if a["held"] >= held], f"{held} request(s) held for {sid}"
    )
    return dict(found[0])


def decide(proc: SandgateProcess, approval_id: str, decision: str) -> dict[str, Any]:
    status, body = proc.admin("POST", f"/v1/approvals/{approval_id}", {"decision": decision})
    assert status == 200, body
    return body


def status_and_reason(response: str) -> tuple[int, str]:
    """The final status line's code and x-sandgate-deny-reason of `curl -i` output (after any tunnel's 200)."""
    blocks = [b for b in response.replace("\r\n", "\n").split("\n\n") if b.startswith("HTTP/")]
    head = blocks[-1].split("\n")
    reason = [line.split(":", 1)[1].strip() for line in head if line.lower().startswith("x-sandgate-deny-reason:")]
    return int(head[0].split()[1]), (reason[0] if reason else "")


def approval_decisions(proc: SandgateProcess, sid: str) -> list[dict[str, Any]]:
    status, body = proc.admin("GET", f"/v1/decisions?session_id={sid}&limit=100")
    assert status == 200, body
    return [d for d in body["decisions"] if d["source"] == "approval"]


def ask_session(client: SandgateClient, **kwargs: Any) -> str:
    return str(client.create(on_unlisted="ASK", **kwargs).id)


def test_held_then_allowed_once(client: SandgateClient, http_upstream: Upstream) -> None:
    proc, sid = client.proc, ask_session(client)
    url = f"http://other.test:{http_upstream.port}/once"
    held = Background(client, sid, f"{CURL} {url}")
    approval = held_approval(proc, sid)
    assert (approval["kind"], approval["host"], approval["port"], approval["method"]) == (
        "request", "other.test", http_upstream.port, "GET",
    )  # fmt: skip
    closed = decide(proc, approval["id"], "allow_once")
    assert (closed["state"], closed["decided_by"]) == ("allowed_once", "admin")
    assert status_and_reason(held.output())[0] == 200
    assert proc.admin("GET", f"/v1/sessions/{sid}/egress")[1]["egress"] == []  # once: no rule was added
    (logged,) = approval_decisions(proc, sid)
    assert (logged["verdict"], logged["reason"], logged["decided_by"]) == ("allow", "approval-allowed-once", "admin")
    assert (logged["host"], logged["port"]) == ("other.test", http_upstream.port)


def test_allowed_for_the_session_adds_the_rule(client: SandgateClient, http_upstream: Upstream) -> None:
    proc, sid = client.proc, ask_session(client)
    url = f"http://other.test:{http_upstream.port}/"
    held = Background(client, sid, f"{CURL} {url}")
    closed = decide(proc, held_approval(proc, sid)["id"], "allow_session")
    assert closed["state"] == "allowed_session"
    assert status_and_reason(held.output())[0] == 200
    rules = proc.admin("GET", f"/v1/sessions/{sid}/egress")[1]["egress"]
    assert rules == [{"host": "other.test", "ports": [http_upstream.port], "methods": [], **NO_INSPECTION}]
    # The next request passes without asking: the route is Envoy's now.
    assert status_and_reason(client.sh(sid, f"{CURL} {url}")[1])[0] == 200
    assert open_approvals(proc, sid) == []
    (logged,) = approval_decisions(proc, sid)
    assert (logged["reason"], logged["decided_by"]) == ("approval-allowed-session", "admin")


def test_denied_is_a_labelled_403(client: SandgateClient, http_upstream: Upstream) -> None:
    proc, sid = client.proc, ask_session(client)
    held = Background(client, sid, f"{CURL} http://other.test:{http_upstream.port}/")
    decide(proc, held_approval(proc, sid)["id"], "deny")
    out = held.output()
    assert status_and_reason(out) == (403, "approval-denied")
    assert "an operator denied the request for approval" in out
    (logged,) = approval_decisions(proc, sid)
    assert (logged["verdict"], logged["reason"], logged["decided_by"]) == ("deny", "approval-denied", "admin")
    _, body = proc.admin("GET", f"/v1/decisions?session_id={sid}&verdict=deny")
    assert any(d["source"] == "envoy" and d["reason"] == "approval-denied" for d in body["decisions"])


def test_nobody_deciding_is_a_timeout(own_sandgate_with: OwnSandgate, http_upstream: Upstream) -> None:
    proc = own_sandgate_with(approval_timeout_seconds=2)
    client = SandgateClient(proc)
    try:
        sid = ask_session(client)
        out = client.sh(sid, f"{CURL} http://other.test:{http_upstream.port}/")[1]
        assert status_and_reason(out) == (403, "approval-timeout")
        logged = wait_for(lambda: approval_decisions(proc, sid), "the timeout in the decision log")
        assert [(d["verdict"], d["reason"], d["decided_by"]) for d in logged] == [
            ("deny", "approval-timeout", "timeout")
        ]
        assert open_approvals(proc, sid) == []
    finally:
        client.cleanup()


def test_requests_for_one_destination_wait_on_one_approval(client: SandgateClient, http_upstream: Upstream) -> None:
    """A plain GET and a CONNECT tunnel to the same host and port: one approval, both released by it."""
    proc, sid = client.proc, ask_session(client)
    url = f"http://other.test:{http_upstream.port}/"
    both = Background(client, sid, f"{CURL} {url} > /tmp/plain & {CURL} --proxytunnel {url} > /tmp/tunnel; wait")
    (approval,) = wait_for(lambda: [a for a in open_approvals(proc, sid) if a["held"] >= 2], "two requests held")
    decide(proc, approval["id"], "allow_once")
    both.output()
    plain, tunnel = (client.sh(sid, f"cat /tmp/{name}")[1] for name in ("plain", "tunnel"))
    assert status_and_reason(plain)[0] == 200
    assert status_and_reason(tunnel)[0] == 200
    assert len(approval_decisions(proc, sid)) == 1


def test_a_sandbox_reads_its_rules_and_proposes_one(client: SandgateClient, http_upstream: Upstream) -> None:
    proc = client.proc
    other = client.create().id
    sid = client.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}]).id
    # The session is the one whose token the listener verified: a header naming another is overwritten.
    code, out, _ = client.sh(sid, f"curl -sS -H 'x-sandgate-session-id: {other}' http://sandgate.internal/v1/rules")
    assert code == 0, out
    mine = json.loads(out)
    assert mine["session_id"] == sid
    assert mine["egress"] == [{"host": "allowed.test", "ports": [http_upstream.port], "methods": [], **NO_INSPECTION}]

    proposal = json.dumps({"host": "other.test", "ports": [http_upstream.port], "reason": "fetch the test index"})
    post = f"curl -sS -H 'content-type: application/json' -d '{proposal}' http://sandgate.internal/v1/rules"
    proposed = json.loads(client.sh(sid, post)[1])["approval"]
    assert (proposed["kind"], proposed["state"], proposed["reason"]) == ("proposal", "pending", "fetch the test index")
    (listed,) = open_approvals(proc, sid)
    assert listed["id"] == proposed["id"]
    assert listed["rule"] == {"host": "other.test", "ports": [http_upstream.port], "methods": [], **NO_INSPECTION}
    # Proposed is not applied: the destination is still refused at once.
    url = f"http://other.test:{http_upstream.port}/"
    assert status_and_reason(client.sh(sid, f"{CURL} {url}")[1]) == (403, "host-not-allowed")
    no_token = "curl -s -o /dev/null -w '%{http_code}' -x http://127.0.0.1:3128 http://sandgate.internal/v1/rules"
    assert client.sh(sid, no_token)[1] == "407"  # the sandbox API is behind the listener's token check too
    too_long = json.dumps({"host": "x.test", "reason": "r" * 1000})
    long_post = f"curl -s -o /dev/null -w '%{{http_code}}' -H 'content-type: application/json' -d '{too_long}'"
    assert client.sh(sid, f"{long_post} http://sandgate.internal/v1/rules")[1] == "400"

    decide(proc, proposed["id"], "allow_session")
    assert status_and_reason(client.sh(sid, f"{CURL} {url}")[1])[0] == 200
    rules = json.loads(client.sh(sid, "curl -sS http://sandgate.internal/v1/rules")[1])["egress"]
    assert {"host": "other.test", "ports": [http_upstream.port], "methods": [], **NO_INSPECTION} in rules
    assert open_approvals(proc, other) == []


def test_a_deny_session_is_never_held(client: SandgateClient, http_upstream: Upstream) -> None:
    proc = client.proc
    sid = client.create().id
    out = client.sh(sid, f"{CURL} http://other.test:{http_upstream.port}/")[1]
    assert status_and_reason(out) == (403, "host-not-allowed")
    assert open_approvals(proc, sid) == []
    assert proc.admin("GET", f"/v1/sessions/{sid}")[1]["on_unlisted"] == "DENY"


def test_operators_follow_and_decide_with_the_cli(client: SandgateClient, http_upstream: Upstream) -> None:
    """`sandgate approvals ls|allow|deny`, and the SSE stream that shows approvals open and close."""
    proc = client.proc
    created = run(proc, "session", "create", "--on-unlisted", "ASK", "--json")
    assert created.returncode == 0, created.stderr
    sid = json.loads(created.stdout)["id"]
    client.created.append(sid)
    seen: list[dict[str, Any]] = []
    follower = AdminClient(f"127.0.0.1:{proc.admin_port}", proc.admin_token)

    def follow() -> None:
        for event in follower.follow(f"/v1/approvals?session_id={sid}"):
            seen.append(event)
            if len(seen) == 4:  # two approvals, each opened and closed
                return

    threading.Thread(target=follow, daemon=True).start()
    ls = ("approvals", "ls", "--session", sid, "--json")
    for port, allow in ((http_upstream.port, ["--session"]), (80, None)):
        held = Background(client, sid, f"{CURL} http://other.test:{port}/")
        (approval,) = wait_for(lambda: json.loads(run(proc, *ls).stdout or "[]"), "the held request in the listing")
        decided = run(proc, "approvals", *(["allow", approval["id"], *allow] if allow else ["deny", approval["id"]]))
        assert decided.returncode == 0, decided.stderr
        expected = (200, "") if allow else (403, "approval-denied")
        assert status_and_reason(held.output()) == expected
    assert proc.admin("GET", f"/v1/sessions/{sid}/egress")[1]["egress"][0]["host"] == "other.test"
    wait_for(lambda: len(seen) == 4, "the stream's four events")
    assert [(e["port"], e["state"]) for e in seen] == [
        (http_upstream.port, "pending"), (http_upstream.port, "allowed_session"), (80, "pending"), (80, "denied"),
    ]  # fmt: skip
