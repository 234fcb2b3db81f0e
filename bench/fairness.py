"""Fairness: a victim session's latency while another session floods Envoy, with the per-session limits
(the defaults) and with them out of reach, side by side.

    gcc -O2 -o build/tunnels bench/tunnels.c && .venv/bin/python -m bench.fairness [--rounds 3] [--seconds 8]

The real service (`sandgate serve`, its managed Envoy, real sandboxes), once with the default limits and
once with every per-session limit set out of reach. Both sessions may reach the same loopback upstream (a
second Envoy answering 200).
From the host, straight at each session's unix socket (the bytes a sandbox's forwarder would pass on,
without gVisor's cost in the way of either side):
- the attacker runs bench/tunnels.c: up to 16 new connections in flight and 1,000 a second, each a
  CONNECT to that upstream, its response head, and close, for the round. Unlimited, that saturates the
  control plane's ext_authz. (Paced: at full speed the flood tool and Envoy's accept loop take both
  cores of this machine from everyone, which no per-session limit in Envoy can give back; in production
  the flood runs inside a sandbox, under its CPU limit.)
- the victim, meanwhile, alternates a plain-HTTP GET on one keep-alive connection and a new CONNECT
  tunnel (connect, CONNECT, response head, close), one at a time, and times each.
Rounds alternate quiet (no attacker) and flood. Loopback only; every round has a fixed duration.
"""

from __future__ import annotations

import argparse
import base64
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.harness import percentile
from control_plane.envoy_process import default_binary
from tests.support.dns import DnsServer
from tests.support.service import SandgateProcess
from tests.support.upstream import EnvoyUpstream

REPO = Path(__file__).resolve().parent.parent
FLOOD, FLOOD_RATE = 16, 1000
OUT_OF_REACH = {
    "session_max_connections": 1_000_000, "session_requests_per_second": 1_000_000,
    "session_request_burst": 1_000_000, "session_tunnels_per_second": 1_000_000, "session_tunnel_burst": 1_000_000,
    "egress_max_connections": 2_000_000, "egress_max_pending_requests": 2_000_000, "egress_max_requests": 2_000_000,
}  # fmt: skip


class Session:
    def __init__(self, proc: SandgateProcess, session_id: str, token: str, authority: str) -> None:
        self.path = str(proc.state_dir / "sessions" / session_id / "proxy.sock")
        auth = "Basic " + base64.b64encode(f"sandgate:{token}".encode()).decode()
        self.auth, self.authority = auth, authority

    def request(self, method: str) -> bytes:
        target = self.authority if method == "CONNECT" else f"http://{self.authority}/"
        head = f"{method} {target} HTTP/1.1\r\nHost: {self.authority}\r\nProxy-Authorization: {self.auth}\r\n\r\n"
        return head.encode()

    def connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(self.path)
        return sock


def head(sock: socket.socket) -> bytes:
    """The response head and its Content-Length body; the status code as bytes, b"---" if closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b"---"
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    length = next((int(ln.split(b":")[1]) for ln in top.split(b"\r\n") if ln.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += sock.recv(65536)
    return top[9:12]


def victim(session: Session, seconds: float) -> tuple[list[float], list[float], Counter[str]]:
    """Plain-HTTP and CONNECT latencies in ms, and every non-200 outcome."""
    plain: list[float] = []
    tunnels: list[float] = []
    failures: Counter[str] = Counter()
    keepalive = session.connect()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.monotonic()
        try:
            keepalive.sendall(session.request("GET"))
            code = head(keepalive)
        except OSError as exc:
            code = type(exc).__name__.encode()
        if code == b"200":
            plain.append((time.monotonic() - start) * 1e3)
        else:
            failures[f"GET {code.decode()}"] += 1
            keepalive.close()
            keepalive = session.connect()
        start = time.monotonic()
        try:
            with session.connect() as sock:
                sock.sendall(session.request("CONNECT"))
                code = head(sock)
        except OSError as exc:
            code = type(exc).__name__.encode()
        if code == b"200":
            tunnels.append((time.monotonic() - start) * 1e3)
        else:
            failures[f"CONNECT {code.decode()}"] += 1
    keepalive.close()
    return plain, tunnels, failures


def attack(session: Session, seconds: float) -> dict[str, int]:
    """The flood; what it got: tunnels opened and refused (429, or closed unanswered)."""
    tool = str(REPO / "build" / "tunnels")
    cmd = [tool, session.path, session.authority, session.auth, str(int(seconds)), str(FLOOD), str(FLOOD_RATE)]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout.split()
    return {"attacker_ok": int(out[0]), "attacker_refused": int(out[1])}


def run_round(attacker: Session, target: Session, seconds: float, flood: bool) -> dict[str, object]:
    if not flood:
        plain, tunnels, failures = victim(target, seconds)
        return {"plain": plain, "tunnels": tunnels, "failures": failures}
    got: dict[str, int] = {}
    flooder = threading.Thread(target=lambda: got.update(attack(attacker, seconds + 1)))
    flooder.start()
    time.sleep(0.5)  # the flood is under way
    plain, tunnels, failures = victim(target, seconds)
    flooder.join()
    return {"plain": plain, "tunnels": tunnels, "failures": failures, **got}


def measure(label: str, settings: dict[str, object], rounds: int, seconds: float, tmp: Path, dns: DnsServer) -> None:
    with EnvoyUpstream(default_binary(), tmp) as upstream:
        proc = SandgateProcess(tmp / f"state-{label}", dns.port, **settings).start()
        try:
            with proc.client() as c:
                rule = [{"host": "allowed.test", "ports": [upstream.port]}]
                a, v = c.create(egress=rule), c.create(egress=rule)
                authority = f"allowed.test:{upstream.port}"
                attacker, target = Session(proc, a.id, a.token, authority), Session(proc, v.id, v.token, authority)
                victim(target, 1)  # warm-up: DNS, pools
                results: dict[str, list[dict[str, object]]] = {"quiet": [], "flood": []}
                for _ in range(rounds):
                    for mode in ("quiet", "flood"):
                        results[mode].append(run_round(attacker, target, seconds, mode == "flood"))
                        time.sleep(1)  # let the flood's connections close
                report(label, results)
        finally:
            proc.stop()


def report(label: str, results: dict[str, list[dict[str, object]]]) -> None:
    for mode, runs in results.items():
        cells = []
        for kind in ("plain", "tunnels"):
            p50 = statistics.median(percentile(r[kind], 50) for r in runs)  # type: ignore[arg-type]
            p99 = statistics.median(percentile(r[kind], 99) for r in runs)  # type: ignore[arg-type]
            count = sum(len(r[kind]) for r in runs)  # type: ignore[arg-type]
            cells.append(f"{p50:.2f} / {p99:.2f} ({count})")
        failures = sum((r["failures"] for r in runs), Counter())  # type: ignore[arg-type]
        attacker = ""
        if mode == "flood":
            ok = sum(r["attacker_ok"] for r in runs)  # type: ignore[misc]
            refused = sum(r["attacker_refused"] for r in runs)  # type: ignore[misc]
            attacker = f"{ok} tunnels opened, {refused} refused"
        print(f"| {label} | {mode} | {cells[0]} | {cells[1]} | {dict(failures) or 'none'} | {attacker} |")


def main(rounds: int, seconds: float) -> None:
    print(f"command: python -m bench.fairness --rounds {rounds} --seconds {seconds:g}")
    print("| limits | attacker | victim plain HTTP p50 / p99 ms (n) | victim new tunnel p50 / p99 ms (n) |"
          " victim failures | attacker got |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, DnsServer({"allowed.test": "127.0.0.1"}) as dns:
        measure("defaults", {}, rounds, seconds, Path(tmp), dns)
        measure("out of reach", OUT_OF_REACH, rounds, seconds, Path(tmp), dns)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    main(args.rounds, args.seconds)
