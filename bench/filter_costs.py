"""Profiling evidence for the data path: the session's listener with one piece removed at a time.

    .venv/bin/python -m bench.filter_costs [--seconds 4]

Each variant is a TCP twin of a session's listener in the same managed Envoy; wrk as in bench.dataplane.
"Without the Lua unwrap" sends the token in the internal header jwt_authn reads, so it still passes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from envoy_data_plane.envoy.config.listener.v3 import Listener

from bench import dataplane
from bench.from_tests import free_port
from bench.harness import RATES_OUT_OF_REACH, control_plane, proxy_auth
from control_plane.envoy_process import default_binary
from control_plane.sessions.manager import CreateRequest
from control_plane.xds.builders import dns_cache_config
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.resource import build

VARIANTS: dict[str, list[str]] = {
    "full policy": [],
    "without the access log": ["access_log"],
    "without the Lua token unwrap": ["sandgate.unwrap-token"],
    "without jwt_authn": ["jwt_authn"],
    "without the forbidden-address RBAC": ["sandgate.forbidden-destinations"],
    "forward proxy and router only": ["access_log", "sandgate.unwrap-token", "jwt_authn",
                                      "sandgate.forbidden-destinations", "ext_authz", "local_reply_config",
                                      "local_ratelimit"],
}  # fmt: skip


def variant(app: Any, session_id: str, port: int, drop: list[str], references: Any) -> Any:
    config = render_session_listener(session_id, "unused", app.parts.keyring.jwks(), app.parts.publisher.egress)
    config["name"] = f"bench-variant-{port}"
    config["address"] = {"socket_address": {"address": "127.0.0.1", "port_value": port}}
    hcm = config["filter_chains"][0]["filters"][-1]["typed_config"]  # after the connection limit
    hcm["http_filters"] = [f for f in hcm["http_filters"] if not any(d in f["name"] for d in drop)]
    for key in ("access_log", "access_log_options") if "access_log" in drop else ():
        hcm.pop(key)
    if "local_reply_config" in drop:
        hcm.pop("local_reply_config")
    return build(Listener, config, references=references)


async def main(seconds: int) -> None:
    up = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "upstream.yaml"
        config.write_text(dataplane.UPSTREAM.read_text().replace("PORT", str(up)))
        flags = ["--disable-hot-restart", "--concurrency", "1", "--log-level", "error"]
        upstream = await asyncio.create_subprocess_exec(str(default_binary()), "-c", str(config), *flags)
        try:
            async with control_plane(warm_pool_size=0, **RATES_OUT_OF_REACH) as app:
                await run(app, up, seconds, Path(tmp))
        finally:
            upstream.terminate()
            await upstream.wait()


async def run(app: Any, up: int, seconds: int, tmp: Path) -> None:
    session, token = await app.parts.manager.create(CreateRequest(egress=[{"host": "allowed.test", "ports": [up]}]))
    references = dataplane.twin_listener(app, session.id, free_port()).references
    ports = {name: free_port() for name in VARIANTS}
    resources = [variant(app, session.id, ports[n], drop, references) for n, drop in VARIANTS.items()]
    base = free_port()
    resources += dataplane.baseline(base, dns_cache_config(app.parts.publisher.egress))
    app.parts.cache.publish(app.settings.node_id, resources)
    await app.parts.cache.wait_applied(app.settings.node_id, {(r.type_url, r.name): r.version for r in resources}, 30)
    await asyncio.sleep(1)
    print(f"command: python -m bench.filter_costs --seconds {seconds}")
    print("| listener | requests/s | p99 ms |")
    print("|---|---|---|")
    for name, port in [*ports.items(), ("baseline listener", base)]:
        auth = proxy_auth(token)
        header = "x-sandgate-token" if "Lua" in name else "Proxy-Authorization"
        value = token if "Lua" in name else auth
        rps, p99 = await dataplane.wrk(port, up, auth, seconds, tmp, header=(header, value))
        print(f"| {name} | {rps:.0f} | {p99:.2f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=4)
    asyncio.run(main(parser.parse_args().seconds))
