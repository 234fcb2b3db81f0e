"""Tunnels from inside a real sandbox: how many one sandbox holds at once, how fast it opens new ones
(against the same client on the host, at the session's unix socket), and the pids limit they need.

    .venv/bin/python -m bench.tunnels_in_sandbox [--ramp 100,250,500,1000,2000,4000,5000] [--rounds 3]
        [--seconds 5] [--pids 64,96,128,192,256,512] [--fork-bomb 1000]

One real service (managed Envoy, --concurrency 1) and default sessions allowed to reach an asyncio echo
server on loopback. The client is tests/e2e/tunnel_client.py (stdlib Python, one process, one thread).
- held: for each count of the ramp, one process in the sandbox opens that many tunnels (250 CONNECTs
  sent before their answers are read, then the next 250), spread over 8 destinations, echoes through
  each while all are open, closes them; stops at the first count that does not fully work. The
  sandbox's host pids and memory are sampled meanwhile. (Spread, because Envoy's default circuit
  breaker holds one destination, shared by every session, to 1,024 connections; in batches, because
  the control-plane cluster's holds ext_authz to 1,024 checks in flight.)
- new tunnels/s: tunnels opened one after another (connect, CONNECT, answer, one byte echoed, close) for
  --seconds, inside the sandbox through its forwarder and on the host at the session's socket,
  alternating, --rounds times. Every tunnel goes through ext_authz. Then one tunnel's throughput: a
  64 MiB download from a loopback server, inside and on the host, --rounds times each.
- pids: for each limit, a default session whose host pids cgroup limit is then lowered to it holds 500
  tunnels and runs an Exec; the host pids of the sandbox are sampled.
- fork bomb: a default session forks sleeping children (at most --fork-bomb) until fork fails or the
  sandbox dies; a second session is checked afterwards.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import grpc

from bench.from_tests import DnsServer, SandgateProcess, StreamServer
from control_plane.client import SessionsClient
from control_plane.sessions.runtime import container_name

SPREAD = [f"t{i}.test" for i in range(8)]
CLIENT = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "tunnel_client.py"
ECHO = r"""
import asyncio
async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""
FORK_BOMB = r"""
import os, sys, time
for i in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as exc:
        print("fork failed:", exc, flush=True)
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    print(i + 1, flush=True)
"""


class Sampler:
    """Peak host pids and memory of a sandbox's cgroups (v1, docker's cgroupfs driver), sampled every 20 ms."""

    def __init__(self, container_id: str) -> None:
        self._pids = Path(f"/sys/fs/cgroup/pids/docker/{container_id}/pids.current")
        self._memory = Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.usage_in_bytes")
        self.pids, self.memory_mib = 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.pids = max(self.pids, int(self._pids.read_text()))
                self.memory_mib = max(self.memory_mib, int(self._memory.read_text()) / 2**20)
            except OSError:
                return  # the sandbox is gone

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def container_id(session_id: str) -> str:
    return str(docker.from_env().containers.get(container_name(session_id)).id)


def inside(c: SessionsClient, session_id: str, **request: object) -> dict[str, Any]:
    result = c.exec(session_id, ["python3", "-c", CLIENT.read_text()], stdin=json.dumps(request).encode(),
                    timeout_seconds=300)  # fmt: skip
    assert result.exit_code == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def on_host(sock: Path, token: str, **request: object) -> dict[str, Any]:
    stdin = json.dumps({**request, "unix": str(sock), "token": token})
    out = subprocess.run([sys.executable, str(CLIENT)], input=stdin, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def held(c: SessionsClient, port: int, ramp: list[int]) -> None:
    print("| tunnels held at once | working | all open after | sandbox host pids (peak) | sandbox memory (peak) |")
    print("|---|---|---|---|---|")
    session = c.create(egress=[{"host": name, "ports": [port]} for name in SPREAD])
    targets = [f"{name}:{port}" for name in SPREAD]
    with Sampler(container_id(session.id)) as idle:
        time.sleep(0.5)
    print(f"| 0 (idle) | | | {idle.pids} | {idle.memory_mib:.0f} MiB |")
    for count in ramp:
        with Sampler(container_id(session.id)) as sample:
            try:
                r = inside(c, session.id, mode="many", targets=targets, count=count, batch=250)
            except (grpc.RpcError, AssertionError, ValueError) as exc:
                r = {
                    "opened": 0,
                    "echoed": 0,
                    "errors": [f"the client failed: {type(exc).__name__}"],
                    "open_seconds": 0,
                }
        working = min(r["opened"], r["echoed"])
        errors = f" ({'; '.join(sorted(set(r['errors'])))})" if r["errors"] else ""
        print(f"| {count:,} | {working:,}{errors} | {r['open_seconds']:.2f} s | {sample.pids} | "
              f"{sample.memory_mib:.0f} MiB |")  # fmt: skip
        if working < count:
            break
    c.delete(session.id)


def rate(c: SessionsClient, proc: SandgateProcess, target: str, rounds: int, seconds: int) -> None:
    session = c.create(egress=[{"host": "allowed.test", "ports": [int(target.split(":")[1])]}])
    sock = proc.state_dir / "sessions" / session.id / "proxy.sock"
    runs: dict[str, list[dict[str, Any]]] = {"inside": [], "host": []}
    for _ in range(rounds):
        runs["inside"].append(inside(c, session.id, mode="rate", target=target, seconds=seconds))
        runs["host"].append(on_host(sock, session.token, mode="rate", target=target, seconds=seconds))
    c.delete(session.id)

    def med(where: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[where])

    print("| client, one tunnel at a time | new tunnels/s | p50 ms | p99 ms | failures |")
    print("|---|---|---|---|---|")
    for where, label in (("host", "on the host, at the session's unix socket"), ("inside", "inside the sandbox")):
        failures = sum(r["failures"] for r in runs[where])
        print(f"| {label} | {med(where, 'per_second'):.0f} | {med(where, 'p50_ms'):.2f} | "
              f"{med(where, 'p99_ms'):.2f} | {failures} |")  # fmt: skip
    ratios = [i["per_second"] / h["per_second"] for i, h in zip(runs["inside"], runs["host"], strict=True)]
    print(f"\ninside / host: {statistics.median(ratios):.2f} (spread {min(ratios):.2f}-{max(ratios):.2f})")


def throughput(c: SessionsClient, proc: SandgateProcess, rounds: int, size_mib: int = 64) -> None:
    with StreamServer.download() as server:
        target = f"allowed.test:{server.port}"
        session = c.create(egress=[{"host": "allowed.test", "ports": [server.port]}])
        sock = proc.state_dir / "sessions" / session.id / "proxy.sock"
        runs: dict[str, list[float]] = {"inside": [], "host": []}
        for _ in range(rounds):
            for where, run in (("inside", lambda **r: inside(c, session.id, **r)),
                               ("host", lambda **r: on_host(sock, session.token, **r))):  # fmt: skip
                r = run(mode="download", target=target, size=size_mib << 20)
                assert r["intact"], r
                runs[where].append(size_mib / r["seconds"])
        c.delete(session.id)
    print(f"| one tunnel, a {size_mib} MiB download | MiB/s (median) | spread |")
    print("|---|---|---|")
    for where, label in (("host", "on the host, at the session's unix socket"), ("inside", "inside the sandbox")):
        print(f"| {label} | {statistics.median(runs[where]):.0f} | {min(runs[where]):.0f}-{max(runs[where]):.0f} |")


def pids(c: SessionsClient, target: str, limits: list[int]) -> None:
    print("| pids limit | 500 tunnels held | Exec after | sandbox host pids (peak) |")
    print("|---|---|---|---|")
    for limit in limits:
        session = c.create(egress=[{"host": "allowed.test", "ports": [int(target.split(":")[1])]}])
        cid = container_id(session.id)
        # What `docker update --pids-limit` would do, which runsc does not support: the host cgroup's limit.
        Path(f"/sys/fs/cgroup/pids/docker/{cid}/pids.max").write_text(str(limit))
        with Sampler(cid) as sample:
            try:
                r = inside(c, session.id, mode="many", target=target, count=500)
                held_ok = f"{min(r['opened'], r['echoed'])}"
                exec_ok = "yes" if c.exec(session.id, ["true"], timeout_seconds=20).exit_code == 0 else "no"
            except (grpc.RpcError, AssertionError) as exc:  # the sandbox died: that is the measurement
                held_ok, exec_ok = f"no ({type(exc).__name__})", "no"
        print(f"| {limit} | {held_ok} | {exec_ok} | {sample.pids} |")
        c.delete(session.id)


def fork_bomb(c: SessionsClient, most: int) -> None:
    bomb, other = c.create(), c.create()
    forks, ended = 0, "the bound"
    with Sampler(container_id(bomb.id)) as sample:
        try:
            for chunk in c.exec_stream(bomb.id, ["python3", "-c", FORK_BOMB, str(most)], timeout_seconds=60):
                for line in chunk.stdout.decode().split():
                    forks = int(line) if line.isdigit() else forks
                if b"fork failed" in chunk.stdout:
                    ended = "fork failed in the sandbox"
        except (grpc.RpcError, AssertionError) as exc:  # the sandbox died: that is the measurement
            ended = f"the sandbox died ({type(exc).__name__})"
    running = docker.from_env().containers.get(container_name(bomb.id)).status
    other_ok = c.exec(other.id, ["true"], timeout_seconds=20).exit_code == 0
    print("| forks before the end | how it ended | sandbox host pids (peak) | its container | another session |")
    print("|---|---|---|---|---|")
    print(f"| {forks} | {ended} | {sample.pids} | {running} | {'works' if other_ok else 'broken'} |")
    for s in (bomb, other):
        c.delete(s.id)


@contextmanager
def echo_server() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait()


def main(args: argparse.Namespace) -> None:
    names = dict.fromkeys(["allowed.test", *SPREAD], "127.0.0.1")
    with tempfile.TemporaryDirectory() as tmp, DnsServer(names) as dns, echo_server() as port:
        proc = SandgateProcess(Path(tmp) / "state", dns.port).start()
        target = f"allowed.test:{port}"
        try:
            with SessionsClient(f"127.0.0.1:{proc.grpc_port}", proc.api_token, timeout=600) as c:
                print(f"command: python -m bench.tunnels_in_sandbox {' '.join(sys.argv[1:])}\n")
                held(c, port, [int(n) for n in args.ramp.split(",")])
                print()
                rate(c, proc, target, args.rounds, args.seconds)
                print()
                throughput(c, proc, args.rounds)
                print()
                pids(c, target, [int(n) for n in args.pids.split(",")])
                print()
                fork_bomb(c, args.fork_bomb)
        finally:
            proc.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ramp", default="100,250,500,1000,2000,4000,5000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--pids", default="64,96,128,192,256,512")
    parser.add_argument("--fork-bomb", type=int, default=1000)
    main(parser.parse_args())
