"""One session cannot take Envoy's shared resources from the others: connections, request rate, HTTP/2
floods, the egress cluster's circuit breakers; and every limit names itself when it refuses.

Attacks run from the host straight at a session's unix socket (the tests run as root): the bytes are
those a sandbox's forwarder would pass on, without gVisor's cost in the way of a flood.
"""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from control_plane.envoy_process import default_binary
from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.support.metrics import sample, scrape
from tests.support.service import SandgateProcess
from tests.support.upstream import EnvoyUpstream, Tarpit, Upstream

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")  # and an empty SETTINGS


def listener_socket(proc: SandgateProcess, session_id: str) -> str:
    return str(proc.state_dir / "sessions" / session_id / "proxy.sock")


def proxy_request(token: str, method: str, authority: str) -> bytes:
    auth = base64.b64encode(f"sandgate:{token}".encode()).decode()
    target = authority if method == "CONNECT" else f"http://{authority}/"
    return f"{method} {target} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode()


def response_head(sock: socket.socket) -> bytes:
    """The response's head, b"" if Envoy closed the connection first; reads a Content-Length body too."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(ln.split(b":")[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")), 0)
    while len(body) < length and (chunk := sock.recv(65536)):
        body += chunk
    return head


def open_to(path: str, timeout: float = 10) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(path)
    return sock


def ask(path: str, request: bytes) -> bytes:
    """One request on a new connection: the response head, or b"" if Envoy closed the connection unanswered."""
    with open_to(path) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return response_head(sock)


def deny_reason(head: bytes) -> str:
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "x-sandgate-deny-reason":
            return value.strip()
    return ""


def decisions(proc: SandgateProcess, session_id: str, count: int) -> list[dict[str, object]]:
    """The session's decisions, once there are `count` of them (Envoy sends its log in batches)."""
    deadline = time.monotonic() + 10
    while True:
        status, body = proc.admin("GET", f"/v1/decisions?session_id={session_id}&limit=1000")
        assert status == 200
        if len(body["decisions"]) >= count:
            return list(body["decisions"])
        assert time.monotonic() < deadline, body["decisions"]
        time.sleep(0.1)


def envoy_counter(proc: SandgateProcess, name: str) -> int:
    for line in proc.envoy_admin(f"/stats?filter=^{name}$").splitlines():
        if line.startswith(name + ":"):
            return int(line.split(":")[1])
    return 0


def test_connections_over_the_session_limit_are_closed_and_other_sessions_are_not(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream
) -> None:
    proc = own_sandgate_with(session_max_connections=8)
    rule = [{"host": "allowed.test", "ports": [http_upstream.port]}]
    with proc.client() as c:
        a, b = c.create(egress=rule), c.create(egress=rule)
    get_a = proxy_request(a.token, "GET", f"allowed.test:{http_upstream.port}")
    path = listener_socket(proc, a.id)
    held = [open_to(path) for _ in range(8)]
    try:
        for sock in held:  # each one answered: Envoy has counted it
            sock.sendall(get_a)
            assert response_head(sock).startswith(b"HTTP/1.1 200")
        assert [ask(path, get_a) for _ in range(4)] == [b""] * 4  # closed unanswered
        assert envoy_counter(proc, "connection_limit.session.limited_connections") == 4
        get_b = proxy_request(b.token, "GET", f"allowed.test:{http_upstream.port}")
        assert ask(listener_socket(proc, b.id), get_b).startswith(b"HTTP/1.1 200")
        with proc.client() as c:
            url = f"http://allowed.test:{http_upstream.port}/"
            assert c.exec(b.id, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url]).stdout == b"200"
        for sock in held:  # the first eight keep working
            sock.sendall(get_a)
            assert response_head(sock).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while not ask(path, get_a).startswith(b"HTTP/1.1 200"):  # their places are free again
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_burst_over_the_rate_gets_429_rate_limited_logged_as_deny(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream
) -> None:
    proc = own_sandgate_with(
        session_requests_per_second=1, session_request_burst=5, session_tunnels_per_second=1, session_tunnel_burst=2
    )
    rule = [{"host": "allowed.test", "ports": [http_upstream.port]}]
    with proc.client() as c:
        a, b, t = c.create(egress=rule), c.create(egress=rule), c.create(egress=rule)
        url = f"http://allowed.test:{http_upstream.port}/"
        burst = ["curl", "-s", "-w", "%{http_code} %header{x-sandgate-deny-reason}\n", *["-o", "/dev/null", url] * 12]
        got = [line.split() for line in c.exec(a.id, burst).stdout.decode().splitlines()]
        checks_before = _ext_authz_checks(proc)
        tunnel = c.exec(a.id, ["curl", "-s", "-p", "-o", "/dev/null", "-w", "%{http_connect}", url]).stdout
        checks_after = _ext_authz_checks(proc)
        other = c.exec(b.id, ["curl", "-s", "-w", "%{http_code} ", *["-o", "/dev/null", url] * 3]).stdout.split()
        # Tunnels have a bucket of their own: two at once, then one a second (each costs a check).
        tunnels = "for i in 1 2 3 4; do curl -s -p -o /dev/null -w '%{http_connect} ' " + url + "; done"
        opened = c.exec(t.id, ["sh", "-c", tunnels]).stdout.split()
    limited = [line for line in got if line[0] == "429"]
    assert len(got) == 12 and all(line[0] == "200" for line in got if line not in limited), got
    assert len(limited) >= 5 and all(line == ["429", "rate-limited"] for line in limited), got
    assert tunnel == b"429" and checks_after == checks_before  # refused before ext_authz: a flood costs no check
    assert other == [b"200"] * 3  # the other session has its own bucket
    assert opened[:2] == [b"200"] * 2 and b"429" in opened[2:], opened
    logged = [(d["verdict"], d["reason"], d["response_code"]) for d in decisions(proc, a.id, 13)]
    assert logged.count(("deny", "rate-limited", 429)) == len(limited) + 1, logged
    assert all(verdict != "allow" for verdict, _, code in logged if code == 429)


def _ext_authz_checks(proc: SandgateProcess) -> int:
    return int(sample(scrape(proc.admin_port), "sandgate_ext_authz_checks_total") or 0)


def test_http2_is_refused_on_the_listener_and_works_inside_a_tunnel(client: SandgateClient, tmp_path: Path) -> None:
    with EnvoyUpstream(default_binary(), tmp_path) as h2:
        s = client.create(egress=[{"host": "allowed.test", "ports": [h2.port]}])
        with open_to(listener_socket(client.proc, s.id)) as sock:
            sock.sendall(H2_PREFACE)
            answer = response_head(sock)
        assert answer.startswith(b"HTTP/1.1 400"), answer  # an HTTP/1.1 answer, not an HTTP/2 SETTINGS frame
        url = f"http://allowed.test:{h2.port}/"
        inside = [
            "curl",
            "-s",
            "-p",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ]
        assert client.exec(s.id, [*inside, url]).stdout == b"2 200"  # HTTP/2 end to end, through a CONNECT tunnel


def heads(socks: list[socket.socket], seconds: float) -> list[bytes | None]:
    """Each socket's response head (peeked, left unread); b"" if closed unanswered, None if unanswered
    after `seconds`."""
    found: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while len(found) < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    peeked = sock.recv(4096, socket.MSG_PEEK)
                except BlockingIOError:
                    continue
                except OSError:
                    peeked = b""
                if not peeked or b"\r\n\r\n" in peeked:
                    found[sock] = peeked.partition(b"\r\n\r\n")[0]
                    selector.unregister(sock)
    return [found.get(sock) for sock in socks]


def statuses(socks: list[socket.socket], seconds: float) -> list[str]:
    """Each socket's response status; "closed" if closed unanswered, "none" if unanswered after `seconds`."""
    return ["none" if head is None else head[9:12].decode() or "closed" for head in heads(socks, seconds)]


def outcome(head: bytes | None) -> str:
    """ "200", "429 rate-limited" and the like; "closed" (unanswered) or "none" (no answer yet)."""
    if head is None:
        return "none"
    return f"{head[9:12].decode()} {deny_reason(head)}".strip() if head else "closed"


@contextlib.contextmanager
def flood(path: str, token: str, authority: str, held: int, seconds: float) -> Iterator[Counter[str]]:
    """Opens `held` tunnels, a thousand at a time, and keeps those it got; then, until the block ends (at
    most `seconds`), sends more CONNECTs, each on a new connection. Counts the answers by status and
    reason ("closed": closed unanswered; "none": no answer within 15 s)."""
    request = proxy_request(token, "CONNECT", authority)
    counts: Counter[str] = Counter()
    socks: list[socket.socket] = []
    for wave in range(0, held, 1000):
        opened = [open_to(path) for _ in range(min(1000, held - wave))]
        for sock in opened:
            with contextlib.suppress(OSError):  # closed already: over the connection limit
                sock.sendall(request)
        for sock, status in zip(opened, [outcome(head) for head in heads(opened, 15)], strict=True):
            counts[status] += 1
            if status in ("200", "none"):
                socks.append(sock)
            else:  # done with: its place goes to the flood below
                sock.close()
    stop = threading.Event()

    def keep_flooding() -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with open_to(path) as sock:
                    sock.sendall(request)
                    head = response_head(sock)
            except OSError:
                head = b""
            counts[outcome(head)] += 1

    worker = threading.Thread(target=keep_flooding)
    worker.start()
    try:
        yield counts
    finally:
        stop.set()
        worker.join()
        for sock in socks:
            sock.close()


def test_one_sessions_flood_refuses_nothing_of_another(own_sandgate_with: OwnSandgate, tmp_path: Path) -> None:
    """The attacker holds as many tunnels as it can to the victim's own destination and keeps opening more;
    the victim's requests and tunnels there all succeed."""
    proc = own_sandgate_with()  # the default limits
    with EnvoyUpstream(default_binary(), tmp_path) as upstream, proc.client() as c:
        rule = [{"host": "allowed.test", "ports": [upstream.port]}]
        attacker, victim = c.create(egress=rule), c.create(egress=rule)
        url = f"http://allowed.test:{upstream.port}/"
        script = (
            f"for i in $(seq 10); do curl -s --max-time 10 -o /dev/null -w '%{{http_code}} ' {url};"
            f" curl -s --max-time 10 -p -o /dev/null -w '%{{http_connect}} ' {url}; done"
        )
        path = listener_socket(proc, attacker.id)
        with flood(path, attacker.token, f"allowed.test:{upstream.port}", held=2200, seconds=60) as counts:
            victim_codes = c.exec(victim.id, ["sh", "-c", script]).stdout.split()
    assert victim_codes == [b"200"] * 20, (victim_codes, counts)
    # Both limits met the attacker: connections over its limit were closed, tunnels over its rate refused.
    assert set(counts) == {"200", "429 rate-limited", "closed"}, counts


def test_an_unanswered_check_is_a_named_deny(own_sandgate_with: OwnSandgate, tls_upstream: Upstream) -> None:
    """With `authz_every_connect` (the only case in which a CONNECT to an allowed host waits on the control plane)."""
    proc = own_sandgate_with(authz_every_connect=True)
    with proc.client() as c:
        s = c.create(egress=[{"host": "secure.test", "ports": [tls_upstream.port]}])
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGSTOP)  # ext_authz gets no answer within its 2 s
    try:
        head = ask(listener_socket(proc, s.id), proxy_request(s.token, "CONNECT", f"secure.test:{tls_upstream.port}"))
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)
    assert head.startswith(b"HTTP/1.1 403") and deny_reason(head) == "authz-unavailable", head
    logged = decisions(proc, s.id, 1)
    assert [(d["verdict"], d["reason"]) for d in logged] == [("deny", "authz-unavailable")]


def test_a_short_heap_refuses_new_requests_by_name(own_sandgate_with: OwnSandgate, http_upstream: Upstream) -> None:
    proc = own_sandgate_with(envoy_max_heap_bytes=1 << 20)  # far below what Envoy already uses
    with proc.client() as c:
        s = c.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    head = ask(listener_socket(proc, s.id), proxy_request(s.token, "GET", f"allowed.test:{http_upstream.port}"))
    assert head.startswith(b"HTTP/1.1 503") and deny_reason(head) == "proxy-overloaded", head
    assert [(d["verdict"], d["reason"]) for d in decisions(proc, s.id, 1)] == [("deny", "proxy-overloaded")]


def test_the_shared_circuit_breaker_names_itself(own_sandgate_with: OwnSandgate) -> None:
    """Sized below what several sessions hold together (never by default), it refuses with its own name.

    Five sessions ask for two tunnels each: three connect, three wait for a connection, the rest find
    the breakers' pending places taken.
    """
    breakers = {"egress_max_connections": 3, "egress_max_pending_requests": 3, "egress_max_requests": 3}
    proc = own_sandgate_with(session_max_connections=2, **breakers)
    with Tarpit() as tarpit, proc.client() as c:
        sessions = [c.create(egress=[{"host": "allowed.test", "ports": [tarpit.port]}]) for _ in range(5)]
        socks = [open_to(listener_socket(proc, s.id)) for s in sessions for _ in range(2)]
        try:
            for sock, s in zip(socks, [s for s in sessions for _ in range(2)], strict=True):
                sock.sendall(proxy_request(s.token, "CONNECT", f"allowed.test:{tarpit.port}"))
            answers = heads(socks, 10)
        finally:
            for sock in socks:
                sock.close()
    refused = [head for head in answers if head and head.startswith(b"HTTP/1.1 503")]
    assert sum(1 for head in answers if head and head.startswith(b"HTTP/1.1 200")) == 3, answers
    assert refused and all(deny_reason(head) == "upstream-overflow" for head in refused), answers
    assert len(refused) + answers.count(None) == 7, answers  # the rest still wait


def test_envoy_has_a_global_connection_limit_and_no_deprecated_settings(sandgate: SandgateProcess) -> None:
    log = (sandgate.state_dir / "envoy.log").read_text()
    assert "global_downstream_max_connections" not in log, log  # neither the deprecation nor "no limit"
    assert "There is no configured limit" not in log
