"""Density: how many idle READY sessions (real runsc sandboxes) this machine holds.

    .venv/bin/python -m bench.density [--sessions 500] [--parallel 4]

Creates sessions through the real service until the target (bounded), then reports the time it took,
the machine's memory in use before and after, and the memory of the control plane and Envoy; then ends
them all. Each sandbox reaches nothing; no traffic is sent.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.from_tests import DnsServer, SandgateProcess
from bench.memory import rss_kib


def used_mib() -> float:
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) / 1024


def main(target: int, parallel: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DnsServer({}) as dns:
        # Idle sandboxes use a fraction of their ceilings: admit them all (docs/CONFIG.md, Admission).
        totals = {"total_memory_mb": (target + 10) * 512, "total_cpus": float(target + 10)}
        proc = SandgateProcess(Path(tmp) / "state", dns.port, max_sessions=target + 10, **totals).start()
        envoy_pid = int((proc.state_dir / "envoy.pid").read_text())
        assert proc.proc
        before, cp0, envoy0 = used_mib(), rss_kib(proc.proc.pid), rss_kib(envoy_pid)
        start = time.monotonic()
        with proc.client() as c, ThreadPoolExecutor(parallel) as pool:
            ids = list(pool.map(lambda _: c.create(egress=[{"host": "pypi.org"}]).id, range(target)))
            ready = sum(1 for s in c.list(page_size=500 if target <= 500 else 0).sessions if s.state == 2)
            elapsed = time.monotonic() - start
            time.sleep(5)
            after, cp1, envoy1 = used_mib(), rss_kib(proc.proc.pid), rss_kib(envoy_pid)
            ok = c.exec(ids[0], ["true"]).exit_code == 0 and c.exec(ids[-1], ["true"]).exit_code == 0
            list(pool.map(c.delete, ids))
        proc.stop()
    print(f"command: python -m bench.density --sessions {target} --parallel {parallel}")
    print("| idle READY sessions | created in | machine memory used | per session (all) | CP + Envoy per session |")
    print("|---|---|---|---|---|")
    per_all = (after - before) / target * 1024
    per_cp = ((cp1 - cp0) + (envoy1 - envoy0)) / target
    used = f"{before:.0f} -> {after:.0f} MiB"
    print(f"| {ready} (exec works: {ok}) | {elapsed:.0f} s | {used} | {per_all:.0f} KiB | {per_cp:.0f} KiB |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    main(args.sessions, args.parallel)
