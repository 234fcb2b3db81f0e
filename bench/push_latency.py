"""Admin write to enforcement: the time from an admin API write to the first request that Envoy decides
by the new rule, with 1, 100 and 1,000 sessions in Envoy.

    .venv/bin/python -m bench.push_latency [--rounds 40]

Each round adds a rule over HTTP (no ?wait) and polls one keep-alive connection of the session until
the new host passes, then removes it and polls until it is refused. Envoy's DNS cache is warmed for
every host first, so a first lookup is not counted. Loopback only; bounded rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.from_tests import Upstream
from bench.harness import KeepAliveProxyClient, control_plane, summary
from control_plane.sessions.manager import CreateRequest

POLL_LIMIT_S = 5.0


async def _until(client: KeepAliveProxyClient, host: str, port: int, want: int) -> None:
    deadline = time.monotonic() + POLL_LIMIT_S
    while await client.status(host, port) != want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host} never answered {want}")


async def measure(admin: str, session_id: str, client: KeepAliveProxyClient, port: int, rounds: int) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": "Bearer bench"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for i in range(rounds):
            host = f"h{i % 64}.bench.test"
            start = time.perf_counter()
            async with http.post(f"{admin}/v1/sessions/{session_id}/egress", json={"host": host, "ports": [port]}) as r:
                assert r.status == 201, await r.text()
            await _until(client, host, port, 200)
            latencies.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            async with http.delete(f"{admin}/v1/sessions/{session_id}/egress/{host}") as r:
                assert r.status == 200, await r.text()
            await _until(client, host, port, 403)
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def main(rounds: int, scales: list[int]) -> None:
    with Upstream() as upstream:
        async with control_plane() as app:
            admin = f"http://127.0.0.1:{app.ports.admin}"
            probe, token = await app.parts.manager.create(CreateRequest(egress=[{"host": "allowed.test"}]))
            client = KeepAliveProxyClient(app.settings.state_dir / "sessions" / probe.id / "proxy.sock", token)
            # Warm Envoy's DNS cache for every host the rounds use: a first lookup is not push latency.
            await measure(admin, probe.id, client, upstream.port, 64)
            count = 1
            print(f"command: python -m bench.push_latency --rounds {rounds}")
            print("| sessions in Envoy | write to enforcement, ms |")
            print("|---|---|")
            for target in scales:
                while count < target:
                    await app.parts.manager.create(CreateRequest(egress=[{"host": "allowed.test"}]))
                    count += 1
                latencies = await measure(admin, probe.id, client, upstream.port, rounds)
                print(f"| {count} | {summary(latencies)} |", flush=True)
            client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--scales", default="1,100,1000")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, [int(x) for x in args.scales.split(",")]))
