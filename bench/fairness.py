"""Fairness: a victim session's latency while another session floods Envoy, with the per-session limits
(the defaults) and with them out of reach, side by side.

    gcc -O2 -o build/tunnels bench/tunnels.c && .venv/bin/python -m bench.fairness [--rounds 3] [--seconds 8]

The real service (`sandgate serve`, its managed Envoy, real sandboxes) twice, side by side: with the
default limits, and with every per-session limit set out of reach. In each, two sessions may reach the
same loopback upstream (a second Envoy answering 200). From the host, straight at each session's unix
socket (the bytes a sandbox's forwarder would pass on, without gVisor's cost in the way of either side):
- the attacker runs bench/tunnels.c: up to 128 new connections in flight and 1,000 a second, each a
  CONNECT to that upstream, its response head, and close, for the round. Unlimited, that saturates the
  control plane's ext_authz. (Paced: at full speed the flood tool and Envoy's accept loop take both
  cores of this machine from everyone, which no per-session limit in Envoy can give back; in production
  the flood runs inside a sandbox, under its CPU limit.)
- the victim, meanwhile, sends 50 plain-HTTP GETs a second on one keep-alive connection and opens 50
  new CONNECT tunnels a second (connect, CONNECT, response head, close), one at a time, and times each.
Each round runs three modes on one service, then on the other: quiet (the victim alone), cpu (two busy
loops that take both cores and send nothing: what plain CPU contention does to the victim on this
2-core machine), flood. Medians over rounds.
Loopback only; every round has a fixed duration.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench.from_tests import DnsServer, EnvoyUpstream, SandgateProcess
from bench.harness import percentile
from control_plane.envoy_process import default_binary

REPO = Path(__file__).resolve().parent.parent
FLOOD, FLOOD_RATE = 128, 1000
OUT_OF_REACH = {
    "session_max_connections": 1_000_000, "session_requests_per_second": 1_000_000,
    "session_request_burst": 1_000_000, "session_tunnels_per_second": 1_000_000, "session_tunnel_burst": 1_000_000,
    "egress_max_connections": 2_000_000, "egress_max_pending_requests": 2_000_000, "egress_max_requests": 2_000_000,
}  # fmt: skip
CONFIGS: dict[str, dict[str, object]] = {"defaults": {}, "out of reach": OUT_OF_REACH}
MODES = ("quiet", "cpu", "flood")
VICTIM_RATE = 50  # plain-HTTP requests, and new tunnels, a second


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
    began = time.monotonic()
    for i in range(int(seconds * VICTIM_RATE)):
        time.sleep(max(0.0, began + i / VICTIM_RATE - time.monotonic()))  # paced: well within its own limits
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


def run_round(attacker: Session, target: Session, seconds: float, mode: str) -> dict[str, object]:
    if mode != "flood":
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if mode == "cpu" else 0)]
        plain, tunnels, failures = victim(target, seconds)
        for hog in hogs:
            hog.kill()
            hog.wait()
        return {"plain": plain, "tunnels": tunnels, "failures": failures}
    got: dict[str, int] = {}
    flooder = threading.Thread(target=lambda: got.update(attack(attacker, seconds + 1)))
    flooder.start()
    time.sleep(0.5)  # the flood is under way
    plain, tunnels, failures = victim(target, seconds)
    flooder.join()
    return {"plain": plain, "tunnels": tunnels, "failures": failures, **got}


Pair = tuple[Session, Session]  # attacker, victim


def start(label: str, settings: dict[str, object], tmp: Path, dns: DnsServer, port: int) -> tuple[object, Pair]:
    proc = SandgateProcess(tmp / f"state-{label}", dns.port, **settings).start()
    with proc.client() as c:
        rule = [{"host": "allowed.test", "ports": [port]}]
        a, v = c.create(egress=rule), c.create(egress=rule)
    authority = f"allowed.test:{port}"
    pair = Session(proc, a.id, a.token, authority), Session(proc, v.id, v.token, authority)
    victim(pair[1], 1)  # warm-up: DNS, pools
    return proc, pair


def measure(rounds: int, seconds: float, tmp: Path, dns: DnsServer) -> dict[tuple[str, str], list[dict[str, object]]]:
    """Both services run side by side; each round runs quiet and flood on each, so load from outside the
    benchmark falls on both alike."""
    results: dict[tuple[str, str], list[dict[str, object]]] = {}
    with EnvoyUpstream(default_binary(), tmp) as upstream:
        stacks = {}
        try:
            for label, settings in CONFIGS.items():
                stacks[label] = start(label, settings, tmp, dns, upstream.port)
            for _ in range(rounds):
                for label, (_, (attacker, target)) in stacks.items():
                    for mode in MODES:
                        results.setdefault((label, mode), []).append(run_round(attacker, target, seconds, mode))
                        time.sleep(1)  # let the flood's connections close
        finally:
            for proc, _ in stacks.values():
                proc.stop()
    return results


def report(results: dict[tuple[str, str], list[dict[str, object]]]) -> None:
    for (label, mode), runs in results.items():
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
        report(measure(rounds, seconds, Path(tmp), dns))
    print(f"load average after the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    main(args.rounds, args.seconds)
