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

from bench import dataplane
from bench.from_tests import free_port
from bench.harness import RATES_OUT_OF_REACH, control_plane, proxy_auth, upstream_envoy
from control_plane.sessions.manager import CreateRequest
from control_plane.xds.builders import dns_cache_config
from control_plane.xds.builders.listener import render_session_listener
from control_plane.xds.resource import build
from control_plane.xds.types import LISTENER

VARIANTS: dict[str, list[str]] = {
    "full policy": [],
    "without the access log": ["access_log"],
    "the access log as a JSON-lines file, unread (instead of gRPC)": ["file_log"],
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
    if "file_log" in drop:
        hcm["access_log"] = [file_access_log(Path(tempfile.gettempdir()) / f"sandgate-bench-{port}.jsonl")]
    if "local_reply_config" in drop:
        hcm.pop("local_reply_config")
    return build(LISTENER, config, references=references)


def file_access_log(path: Path) -> dict[str, Any]:
    """What a decision needs, as one JSON object a line: the alternative audit transport (issue 12, decision 3)."""
    fields = {
        "start_time": "%START_TIME%", "listener": "%DOWNSTREAM_LOCAL_ADDRESS%", "method": "%REQ(:METHOD)%",
        "authority": "%REQ(:AUTHORITY)%", "route": "%ROUTE_NAME%", "code": "%RESPONSE_CODE%",
        "details": "%RESPONSE_CODE_DETAILS%", "deny_reason": "%RESP(X-SANDGATE-DENY-REASON)%",
        "bytes_sent": "%BYTES_SENT%", "bytes_received": "%BYTES_RECEIVED%", "duration_ms": "%DURATION%",
        "stream_id": "%STREAM_ID%", "type": "%ACCESS_LOG_TYPE%",
    }  # fmt: skip
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(path),
            "log_format": {"json_format": fields},
        },
    }


async def main(seconds: int) -> None:
    up = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        async with upstream_envoy(up, Path(tmp)), control_plane(warm_pool_size=0, **RATES_OUT_OF_REACH) as app:
            await run(app, up, seconds, Path(tmp))


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
