"""Density: how many idle READY sessions (real runsc sandboxes) this machine holds, and what each step costs.

    .venv/bin/python -m bench.density [--sessions 1000] [--steps 1,250,500,750,1000] [--parallel 4]

Creates sessions through the real service (`sandgate serve`, managed Envoy, real dockerd + runsc) in
steps, `parallel` at a time, until the target. At each step it reports the sessions READY, the create
latency of the sessions created in that step (gRPC CreateSession to READY, as a client sees it), the
machine's memory in use (MemTotal - MemAvailable) and the control plane's and Envoy's resident memory.
At the end an Exec runs in the first and in the last session; then all are ended. Each sandbox reaches
nothing and no traffic is sent: idle sessions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.from_tests import DnsServer, SandgateProcess
from bench.harness import percentile
from bench.memory import rss_kib
from control_plane.client import SessionsClient


def used_mib() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 1024


def timed_create(c: SessionsClient) -> tuple[str, float]:
    start = time.monotonic()
    session = c.create(egress=[{"host": "pypi.org"}])
    return session.id, (time.monotonic() - start) * 1000


def ready_count(c: SessionsClient) -> int:
    ready, token = 0, ""
    while True:
        page = c.list(page_size=500, page_token=token)
        ready += sum(1 for s in page.sessions if s.state == 2)
        if not (token := page.next_page_token):
            return ready


def main(target: int, steps: list[int], parallel: int) -> None:
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, DnsServer({}) as dns:
        # Idle sandboxes use a fraction of their ceilings: admit them all (docs/CONFIG.md, Admission).
        totals = {"total_memory_mb": (target + 10) * 512, "total_cpus": float(target + 10)}
        proc = SandgateProcess(Path(tmp) / "state", dns.port, max_sessions=target + 10, **totals).start(timeout=120)
        envoy_pid = int((proc.state_dir / "envoy.pid").read_text())
        assert proc.proc
        base = used_mib()
        ids: list[str] = []
        with proc.client() as c, ThreadPoolExecutor(parallel) as pool:
            for step in steps:
                made = list(pool.map(lambda _: timed_create(c), range(step - len(ids))))
                ids += [sid for sid, _ in made]
                latencies = [ms for _, ms in made]
                time.sleep(2)  # let the last sandboxes settle before memory is read
                used, cp, envoy = used_mib(), rss_kib(proc.proc.pid) / 1024, rss_kib(envoy_pid) / 1024
                per = (used - base) / len(ids)
                rows.append(
                    f"| {len(ids)} | {ready_count(c)} | {percentile(latencies, 50):.0f} | "
                    f"{percentile(latencies, 99):.0f} | {used:.0f} | {per:.1f} | {cp:.0f} | {envoy:.0f} |"
                )
                print(rows[-1], flush=True)
            first = c.exec(ids[0], ["echo", "first"])
            last = c.exec(ids[-1], ["echo", "last"])
            execs = f"first: exit {first.exit_code} {first.stdout.decode().strip()!r}; last: exit {last.exit_code}"
            execs += f" {last.stdout.decode().strip()!r}"
            list(pool.map(c.delete, ids))
        proc.stop()
    spec = ",".join(map(str, steps))
    print(f"\ncommand: python -m bench.density --sessions {target} --steps {spec} --parallel {parallel}")
    print(f"machine memory in use before: {base:.0f} MiB")
    print("| sessions | READY | create p50 ms | p99 ms | machine MiB used | MiB/session | CP RSS MiB | Envoy RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nExec at {len(ids)} sessions: {execs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--steps", default="1,250,500,750,1000")
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    steps = sorted({int(s) for s in args.steps.split(",") if int(s) <= args.sessions} | {args.sessions})
    main(args.sessions, steps, args.parallel)
