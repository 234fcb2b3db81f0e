"""Memory of the control plane and Envoy per session (the sandbox itself excluded), at 1, 100 and 1,000
sessions: real listeners and routes in Envoy, no containers.

    .venv/bin/python -m bench.memory [--scales 1,100,1000]

RSS is read from /proc after a settle; the figure per session is the slope between scales.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
from pathlib import Path

from bench.harness import control_plane
from control_plane.sessions.manager import CreateRequest


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def main(scales: list[int]) -> None:
    async with control_plane(warm_pool_size=0) as app:
        assert app.envoy and app.envoy.pid
        rows = []
        count = 0
        for target in scales:
            while count < target:
                await app.parts.manager.create(CreateRequest(egress=[{"host": "allowed.test"}, {"host": "*.pypi.org"}]))
                count += 1
            gc.collect()
            await asyncio.sleep(3)
            rows.append((count, rss_kib(os.getpid()), rss_kib(app.envoy.pid)))
    print(f"command: python -m bench.memory --scales {','.join(map(str, scales))}")
    print("| sessions | control plane RSS MiB | Envoy RSS MiB | KiB per added session (CP + Envoy) |")
    print("|---|---|---|---|")
    previous = None
    for n, cp, envoy in rows:
        slope = "" if previous is None else f"{((cp + envoy) - (previous[1] + previous[2])) / (n - previous[0]):.0f}"
        print(f"| {n} | {cp / 1024:.1f} | {envoy / 1024:.1f} | {slope} |")
        previous = (n, cp, envoy)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scales", default="1,100,1000")
    asyncio.run(main([int(x) for x in parser.parse_args().scales.split(",")]))
