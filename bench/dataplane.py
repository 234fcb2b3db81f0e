"""The data path, measured at the Envoy listener: a session's full policy against the same Envoy with no policy.

    .venv/bin/python -m bench.dataplane [--rounds 5] [--seconds 5]

Two TCP listeners in the managed Envoy (`--concurrency 1`), pushed over xDS, side by side:
- policy: a twin of a session's listener, the identical filter chain and routes (connection limit, rate
  limit, token unwrap, jwt_authn, ext_authz on CONNECT, dynamic forward proxy, forbidden-address RBAC,
  the session's allowlist), with the session's rate limits set out of reach: this measures the path;
- baseline: the same Envoy, dynamic forward proxy and router only, every destination allowed.
The upstream is a second Envoy answering 200 directly, so neither Python nor a slow server bounds the run.
Load: wrk (1 thread, 16 connections) for plain-HTTP keep-alive; bench/tunnels.c (1 thread, 16 tunnels
being set up at once) for new CONNECT tunnels. Rounds alternate policy / baseline. Loopback only; every
run has a fixed duration.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.from_tests import envoy_admin_get, free_port
from bench.harness import RATES_OUT_OF_REACH, control_plane, proxy_auth, upstream_envoy
from control_plane.app import App
from control_plane.envoy_contract import session_resource_name
from control_plane.sessions.manager import CreateRequest
from control_plane.xds.builders import (
    CONTROL_PLANE_CLUSTER,
    EGRESS_CLUSTER,
    TYPE,
    dns_cache_config,
)
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.builders.shared import DESTINATIONS_FILTER, UNWRAP_TOKEN_FILTER
from control_plane.xds.resource import build
from control_plane.xds.types import FILTER_CONFIG, LISTENER, ROUTE

REPO = Path(__file__).resolve().parent.parent
WRK_SCRIPT = """
wrk.method = "GET"
wrk.path = "http://allowed.test:{port}/"
wrk.headers["Host"] = "allowed.test:{port}"
wrk.headers["{header}"] = "{value}"
"""


def twin_listener(app: App, session_id: str, port: int) -> Any:
    """The session's listener, byte for byte the same filter chain, on a TCP port wrk can reach."""
    path = app.settings.state_dir / "sessions" / session_id / "proxy.sock"
    config = render_session_listener(session_id, str(path), app.parts.keyring.jwks(), app.parts.publisher.egress)
    config["name"] = "bench-policy"
    config["address"] = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    needs = ((ROUTE, session_resource_name(session_id)), (FILTER_CONFIG, UNWRAP_TOKEN_FILTER),
             (FILTER_CONFIG, DESTINATIONS_FILTER))  # fmt: skip
    return build(LISTENER, config, references=needs)


def _forward(connect: bool) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": EGRESS_CLUSTER, "timeout": "0s"}
    if connect:
        action["upgrade_configs"] = [{"upgrade_type": "CONNECT", "connect_config": {}}]
    return {"match": {"connect_matcher": {}} if connect else {"prefix": "/"}, "route": action}


def _filter(name: str, message: str, **config: Any) -> dict[str, Any]:
    return {"name": name, "typed_config": {"@type": TYPE + message, **config}}


def baseline(port: int, dns_cache: dict[str, Any]) -> list[Any]:
    """The same Envoy with no policy: forward proxy and router only, every destination allowed."""
    vhost = {"name": "all", "domains": ["*"], "routes": [_forward(True), _forward(False)]}
    routes = {"name": "bench-baseline", "virtual_hosts": [vhost]}
    hcm = {
        "stat_prefix": "baseline",
        "http_protocol_options": {"allow_absolute_url": True},
        "upgrade_configs": [{"upgrade_type": "CONNECT"}],
        "rds": {"route_config_name": "bench-baseline", "config_source": {"ads": {}, "resource_api_version": "V3"}},
        "http_filters": [
            _filter("envoy.filters.http.dynamic_forward_proxy",
                    "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig", dns_cache_config=dns_cache),
            _filter("envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router"),
        ],
    }  # fmt: skip
    manager = _filter("envoy.filters.network.http_connection_manager", HCM, **hcm)
    listener = {
        "name": "bench-baseline",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [manager]}],
    }
    return [build(ROUTE, routes), build(LISTENER, listener, references=((ROUTE, "bench-baseline"),))]


CONNECTIONS = 16  # for wrk and for tunnels: one client thread, this many connections at once
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


async def wrk(
    port: int, upstream: int, auth: str, seconds: int, script_dir: Path, header: tuple[str, str] | None = None
) -> tuple[float, float]:
    name, value = header or ("Proxy-Authorization", auth)
    script = script_dir / "proxy.lua"
    script.write_text(WRK_SCRIPT.format(port=upstream, header=name, value=value))
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out = (await proc.communicate())[0].decode()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rps, _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group(0)), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def tunnels(
    port: int, upstream: int, auth: str, seconds: int, connections: int = CONNECTIONS
) -> tuple[float, float]:
    """New tunnels per second and the p99 setup time in ms, with `connections` tunnels being set up at once."""
    proc = await asyncio.create_subprocess_exec(
        str(REPO / "build" / "tunnels"), str(port), f"allowed.test:{upstream}", auth, str(seconds), str(connections),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    ok, failed, _p50_us, p99_us = map(int, (await proc.communicate())[0].split())
    assert failed <= ok * 0.01, f"{failed} tunnels failed"
    return ok / seconds, p99_us / 1000


def row(name: str, policy: list[float], base: list[float]) -> str:
    ratios = [p / b for p, b in zip(policy, base, strict=True)]
    return (f"| {name} | {statistics.median(base):.0f} | {statistics.median(policy):.0f} | "
            f"{statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} |")  # fmt: skip


async def main(rounds: int, seconds: int) -> None:
    up_port, policy_port, base_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        async with upstream_envoy(up_port, Path(tmp)), control_plane(warm_pool_size=0, **RATES_OUT_OF_REACH) as app:
            await run(app, up_port, policy_port, base_port, rounds, seconds, Path(tmp))


async def run(app: App, up: int, policy_port: int, base_port: int, rounds: int, seconds: int, tmp: Path) -> None:
    session, token = await app.parts.manager.create(CreateRequest(egress=[{"host": "allowed.test", "ports": [up]}]))
    dns_cache = dns_cache_config(app.parts.publisher.egress)
    resources = [twin_listener(app, session.id, policy_port), *baseline(base_port, dns_cache)]
    app.parts.cache.publish(app.settings.node_id, resources)
    await app.parts.cache.wait_applied(app.settings.node_id, {(r.type_url, r.name): r.version for r in resources}, 30)
    await asyncio.sleep(1)
    auth = proxy_auth(token)
    keys = ("p_rps", "b_rps", "p_p99", "b_p99", "p_tun", "b_tun", "p_tun99", "b_tun99", "p_tun1", "b_tun1")
    results: dict[str, list[float]] = {k: [] for k in keys}
    await wrk(policy_port, up, auth, 2, tmp)  # warm-up, not counted
    await wrk(base_port, up, auth, 2, tmp)
    # ext_authz latency at a steady rate below saturation: one tunnel at a time, before any other CONNECT.
    paced_rate, _ = await tunnels(policy_port, up, auth, seconds, connections=1)
    authz = await envoy_stat(app, f"cluster.{CONTROL_PLANE_CLUSTER}.upstream_rq_time")
    for _ in range(rounds):
        for prefix, port in (("p", policy_port), ("b", base_port)):
            rps, p99 = await wrk(port, up, auth, seconds, tmp)
            results[f"{prefix}_rps"].append(rps)
            results[f"{prefix}_p99"].append(p99)
        for prefix, port in (("p", policy_port), ("b", base_port)):
            rate, p99 = await tunnels(port, up, auth, seconds)
            results[f"{prefix}_tun"].append(rate)
            results[f"{prefix}_tun99"].append(p99)
            results[f"{prefix}_tun1"].append((await tunnels(port, up, auth, seconds, connections=1))[0])
    report(results, rounds, seconds, f"{paced_rate:.0f} checks/s: {authz}")


async def envoy_stat(app: App, name: str) -> str:
    path = f"/stats?filter=^{name}$&histogram_buckets=none"
    text = await asyncio.to_thread(envoy_admin_get, app.settings.envoy_admin_path, path, 5.0)
    return text.strip()


def added_row(name: str, policy: list[float], base: list[float]) -> str:
    added = [p - b for p, b in zip(policy, base, strict=True)]
    return (f"| {name} | {statistics.median(base):.2f} | {statistics.median(policy):.2f} | "
            f"added {statistics.median(added):.2f} ms | {min(added):.2f}-{max(added):.2f} ms |")  # fmt: skip


def report(r: dict[str, list[float]], rounds: int, seconds: int, authz: str) -> None:
    print(f"command: python -m bench.dataplane --rounds {rounds} --seconds {seconds}")
    print("| figure | baseline (no policy) | full policy | ratio (median) | ratio spread |")
    print("|---|---|---|---|---|")
    print(row("plain-HTTP keep-alive requests/s", r["p_rps"], r["b_rps"]))
    print(row(f"new CONNECT tunnels/s, {CONNECTIONS} at once", r["p_tun"], r["b_tun"]))
    print(row("new CONNECT tunnels/s, one at a time", r["p_tun1"], r["b_tun1"]))
    print(added_row("p99 latency, ms (wrk)", r["p_p99"], r["b_p99"]))
    print(added_row("p99 tunnel setup, ms", r["p_tun99"], r["b_tun99"]))
    print(f"\next_authz Check latency seen by Envoy, one tunnel at a time, {authz}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.seconds))
