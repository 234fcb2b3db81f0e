"""Does the audit keep up? The data path at its maximum rate, and every request's decision stored.

    .venv/bin/python -m bench.audit [--rounds 3] [--seconds 10]

A twin of a session's listener (the identical filter chain, the gRPC access log included, see
bench/dataplane.py) is driven by wrk (1 thread, 16 keep-alive connections, no pacing: as fast as the
path goes) for a fixed time. Then, per round:
- Envoy's own count: `http.session.downstream_rq_total` (every request the session listener
  received, answered or aborted, allowed or not) and the gRPC access logger's `logs_dropped` (entries it gave up on) and
  `grpc_entries_flush_failed` (entries of batches held back because the control plane read slower than
  Envoy wrote: back-pressure, retried at the next flush, not a loss by itself);
- the control plane's count: the rows in the decision journal (`decisions.db`), read through
  its own read-only connection, which is what `GET /v1/decisions` reads.
Lost = Envoy's requests - stored decisions, once the audit has drained (bounded wait).
Lag: every 100 ms during the run, Envoy's request count is sampled; a sample's lag is the time until the
journal holds at least that many of the session's decisions, i.e. how late a query sees a decision.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.dataplane import twin_listener, wrk
from bench.harness import RATES_OUT_OF_REACH, control_plane, percentile, proxy_auth, upstream_envoy
from control_plane.app import App
from control_plane.sessions.manager import CreateRequest
from tests.support.envoy_admin import envoy_admin_get
from tests.support.service import free_port

SAMPLE_S = 0.1
DRAIN_S = 10.0  # how long the audit may take to catch up after the load stops before the rest counts as lost
REQUESTS = "http.session.downstream_rq_total"
ALS = "access_logs.grpc_access_log."
FLUSH_FAILED = "grpc_entries_flush_failed"  # a batch Envoy could not send on the stream


async def envoy_counters(app: App) -> dict[str, int]:
    text = await asyncio.to_thread(
        envoy_admin_get,
        app.settings.envoy_admin_path,
        "/stats?filter=^(http.session.downstream_rq_total|access_logs)",
        5.0,
    )
    return {name: int(value) for name, _, value in (line.partition(": ") for line in text.splitlines()) if value}


class Stored:
    """The decisions in the journal, counted through a read-only connection. The twin listener is on TCP,
    so its decisions carry no session id (sessions are named by their socket path); it is the only traffic."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])


async def settled(app: App, stored: Stored) -> None:
    """Wait (at most DRAIN_S) until the journal holds a decision for every request Envoy has seen so far:
    the twin listener is the only traffic, so the two totals meet once the audit has caught up."""
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:
        if stored.count() >= (await envoy_counters(app))[REQUESTS]:
            return
        await asyncio.sleep(SAMPLE_S)


async def one_round(
    app: App, stored: Stored, port: int, up: int, auth: str, seconds: int, tmp: Path
) -> dict[str, float]:
    await settled(app, stored)  # the previous round's (or the warm-up's) decisions are all in
    before, stored_before = await envoy_counters(app), stored.count()
    load = asyncio.create_task(wrk(port, up, auth, seconds, tmp))
    samples: list[tuple[float, int]] = []  # (when, Envoy's request count then)
    lags: list[float] = []
    while not load.done() or samples:
        now = time.monotonic()
        if not load.done():
            samples.append((now, (await envoy_counters(app))[REQUESTS] - before[REQUESTS]))
        have = await asyncio.to_thread(stored.count) - stored_before
        while samples and samples[0][1] <= have:
            lags.append(time.monotonic() - samples.pop(0)[0])
        if load.done() and samples and time.monotonic() - samples[0][0] > DRAIN_S:
            break
        await asyncio.sleep(SAMPLE_S)
    rps, _ = await load
    await asyncio.to_thread(app.state.journal.flush)
    after = await envoy_counters(app)
    requests = after[REQUESTS] - before[REQUESTS]
    return {
        "rps": rps,
        "requests": requests,
        "stored": stored.count() - stored_before,
        "lost": requests - (stored.count() - stored_before),
        "als_dropped": after.get(ALS + "logs_dropped", 0) - before.get(ALS + "logs_dropped", 0),
        "als_flush_failed": after.get(ALS + FLUSH_FAILED, 0) - before.get(ALS + FLUSH_FAILED, 0),
        "lag_p50": percentile(lags, 50) if lags else float("nan"),
        "lag_max": max(lags) if lags else float("nan"),
        "unresolved_samples": len(samples),
    }


async def main(rounds: int, seconds: int) -> None:
    up_port, port = free_port(), free_port()
    overrides = {"warm_pool_size": 0, "decision_retention": 50_000_000, "decision_retention_per_session": 50_000_000}
    with tempfile.TemporaryDirectory() as tmp:
        async with upstream_envoy(up_port, Path(tmp)), control_plane(**overrides, **RATES_OUT_OF_REACH) as app:
            await run(app, up_port, port, rounds, seconds, Path(tmp))


async def run(app: App, up: int, port: int, rounds: int, seconds: int, tmp: Path) -> None:
    session, token = await app.parts.manager.create(CreateRequest(egress=[{"host": "allowed.test", "ports": [up]}]))
    listener = twin_listener(app, session.id, port)
    app.parts.cache.publish(app.settings.node_id, [listener])
    await app.parts.cache.wait_applied(app.settings.node_id, {(listener.type_url, listener.name): listener.version}, 30)
    auth = proxy_auth(token)
    await wrk(port, up, auth, 2, tmp)  # warm-up: DNS, connections; its decisions are not counted
    stored = Stored(app.settings.state_dir / "decisions.db")
    print(f"command: python -m bench.audit --rounds {rounds} --seconds {seconds}")
    print("| round | requests/s | Envoy requests | stored | lost | ALS dropped, flush failed | lag p50 s | lag max s |")
    print("|---|---|---|---|---|---|---|---|")
    for n in range(1, rounds + 1):
        r = await one_round(app, stored, port, up, auth, seconds, tmp)
        als = f"{r['als_dropped']:.0f}, {r['als_flush_failed']:.0f}"
        print(f"| {n} | {r['rps']:.0f} | {r['requests']:.0f} | {r['stored']:.0f} | {r['lost']:.0f} | {als} | "
              f"{r['lag_p50']:.2f} | {r['lag_max']:.2f} |")  # fmt: skip
        if r["unresolved_samples"]:
            print(f"  ({r['unresolved_samples']:.0f} lag samples never caught up within {DRAIN_S:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seconds))
