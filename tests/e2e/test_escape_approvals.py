"""Attacks on the approval model and the sandbox API (http://sandgate.internal) from inside real sandboxes.

Each test is named for the claim it proves. What is already proved elsewhere (a forged session header on a plain
request, a DENY session never held, one approval per destination) is in test_approvals.py."""

from __future__ import annotations

from tests.e2e.conftest import SandgateClient
from tests.e2e.test_approvals import wait_for

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
