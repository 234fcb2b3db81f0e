"""A control-plane outage: what keeps working while it is down, and how soon everything is back.

    .venv/bin/python -m bench.restart [--rounds 5]

The real service (`sandgate serve`, managed Envoy, real dockerd + runsc) with one live session allowed to
reach a loopback upstream. Each round kills the control plane with SIGKILL, then:
- during the outage: 20 requests on new connections at the session's own listener socket (what the
  sandbox's forwarder reaches), half to the allowed host, half to a denied one: every allowed one must
  get 200 and every denied one 403 (Envoy decides alone);
- restart (`sandgate serve` again, same state) and time, from the moment the process is spawned:
  gRPC health SERVING; `/readyz` 200 (Envoy reconnected and ACKed the current config); a new session
  READY; a live rule edit with `?wait=applied` answered.
Polling is every 10 ms, so each figure is at most 10 ms late.
"""

from __future__ import annotations

import argparse
import base64
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.dns import DnsServer
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

POLL_S = 0.01


def status_at(sock: Path, token: str, host: str, port: int) -> int:
    """One plain-HTTP request through the session's listener on a new connection; the status code."""
    auth = base64.b64encode(f"sandgate:{token}".encode()).decode()
    request = f"GET http://{host}:{port}/ HTTP/1.1\r\nHost: {host}:{port}\r\nProxy-Authorization: Basic {auth}\r\n"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall((request + "Connection: close\r\n\r\n").encode())
        return int(s.recv(64).split()[1])


def until(check: Callable[[], bool], start: float, limit: float = 30.0) -> float:
    """Seconds from `start` until `check()` first holds."""
    while not check():
        if time.monotonic() - start > limit:
            raise TimeoutError(f"not within {limit} s")
        time.sleep(POLL_S)
    return time.monotonic() - start


def spawn(proc: SandgateProcess) -> None:
    log = proc.log_path.open("ab")
    proc.proc = subprocess.Popen(
        [sys.executable, "-m", "control_plane", "serve", "--config", str(proc.config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def one_round(proc: SandgateProcess, session: object, sock: Path, port: int) -> dict[str, float]:
    token = session.token  # type: ignore[attr-defined]
    proc.stop(signal.SIGKILL)
    outage = [status_at(sock, token, host, port) for host in ("allowed.test", "other.test") * 10]
    assert outage == [200, 403] * 10, f"during the outage: {outage}"
    start = time.monotonic()
    spawn(proc)
    times = {"grpc": until(proc._grpc_serving, start)}
    try:
        times["readyz"] = until(lambda: proc.admin("GET", "/readyz", token="")[0] == 200, start)
    except TimeoutError:
        raise TimeoutError(f"{proc.admin('GET', '/readyz', token='')}\n{proc.log()}") from None
    with proc.client() as c:
        fresh = c.create(egress=[{"host": "allowed.test", "ports": [port]}])
        times["create"] = time.monotonic() - start
        status, _ = proc.admin(
            "POST", f"/v1/sessions/{fresh.id}/egress?wait=applied", {"host": "other.test", "ports": [port]}
        )
        assert status in (200, 201), status
        times["edit"] = time.monotonic() - start
        c.delete(fresh.id)
    return times


def main(rounds: int) -> None:
    names = {"allowed.test": "127.0.0.1", "other.test": "127.0.0.1"}
    with tempfile.TemporaryDirectory(prefix="sg-restart-") as tmp, Upstream() as up, DnsServer(names) as dns:
        proc = SandgateProcess(Path(tmp) / "state", dns.port).start()
        try:
            with proc.client() as c:
                session = c.create(egress=[{"host": "allowed.test", "ports": [up.port]}])
            sock = proc.state_dir / "sessions" / session.id / "proxy.sock"
            results = [one_round(proc, session, sock, up.port) for _ in range(rounds)]
            with proc.client() as c:
                c.delete(session.id)
        finally:
            proc.stop()
    print(f"command: python -m bench.restart --rounds {rounds}")
    print("| from spawning `sandgate serve` to | median s | max s |")
    print("|---|---|---|")
    names = {"grpc": "gRPC health SERVING", "readyz": "`/readyz` 200 (Envoy ACKed)", "create": "a new session READY",
             "edit": "a rule edit applied (`?wait=applied`)"}  # fmt: skip
    for key, name in names.items():
        values = [r[key] for r in results]
        print(f"| {name} | {statistics.median(values):.2f} | {max(values):.2f} |")
    print(f"\nDuring each outage 20 of 20 requests were decided by Envoy alone ({rounds} rounds).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    main(parser.parse_args().rounds)
