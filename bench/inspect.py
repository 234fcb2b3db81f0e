"""HTTPS inspection's cost, side by side in one run: inspected vs opaque tunnels to the same TLS upstream.

    .venv/bin/python -m bench.inspect [--rounds 3] [--seconds 4] [--connections 4] [--sessions 50]

- keep-alive: requests/s over `--connections` long-lived tunnels, each GET answered 200 by the upstream,
  the tunnel inspected (Envoy ends TLS, decides, re-encrypts) or opaque (the client's TLS, end to end);
- handshake: milliseconds for a new tunnel (CONNECT, TLS handshake, one request), sequentially;
- memory: Envoy's heap per session, `--sessions` sessions without and then with one inspected rule.
The upstream is a second Envoy answering 200 itself over TLS, so Python bounds only the client, the same for
both kinds (rounds alternate). Loopback only; every load is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness import RATES_OUT_OF_REACH, control_plane
from control_plane.app import App
from control_plane.envoy_process import default_binary
from control_plane.sessions.manager import CreateRequest
from tests.support.envoy_admin import envoy_admin_get
from tests.support.service import free_port
from tests.support.upstream import make_test_ca

HOST, OPAQUE = "allowed.test", "other.test"  # both resolve to the upstream on 127.0.0.1
UPSTREAM = """
static_resources:
  listeners:
  - address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates: [{{certificate_chain: {{filename: {cert}}}, private_key: {{filename: {key}}}}}]
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: up
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{{match: {{prefix: /}}, direct_response: {{status: 200, body: {{inline_string: ok}}}}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"""


class Tunnel:
    """One CONNECT tunnel through a session's listener socket, with TLS inside, used for keep-alive GETs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, socket_path: str, token: str, host: str, port: int, trust: ssl.SSLContext) -> Tunnel:
        reader, writer = await asyncio.open_unix_connection(socket_path)
        auth = base64.b64encode(f"sandgate:{token}".encode()).decode()
        writer.write(f"CONNECT {host}:{port} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode())
        await reader.readuntil(b"\r\n\r\n")
        await writer.start_tls(trust, server_hostname=host)
        return cls(reader, writer)

    async def get(self, authority: str) -> int:
        self.writer.write(f"GET /x HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        status = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return int(status.split()[1])

    def close(self) -> None:
        self.writer.close()


async def keep_alive_rps(open_tunnel: object, authority: str, connections: int, seconds: float) -> float:
    tunnels = [await open_tunnel() for _ in range(connections)]  # type: ignore[operator]
    deadline, count = time.monotonic() + seconds, 0

    async def loop(t: Tunnel) -> None:
        nonlocal count
        while time.monotonic() < deadline:
            assert await t.get(authority) == 200
            count += 1

    await asyncio.gather(*(loop(t) for t in tunnels))
    for t in tunnels:
        t.close()
    return count / seconds


async def handshake_ms(open_tunnel: object, authority: str, count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        tunnel = await open_tunnel()  # type: ignore[operator]
        assert await tunnel.get(authority) == 200
        times.append((time.perf_counter() - start) * 1000)
        tunnel.close()
    return statistics.median(times)


def heap_bytes(app: App) -> int:
    return int(json.loads(envoy_admin_get(app.settings.envoy_admin_path, "/memory"))["allocated"])


async def memory_per_session(app: App, port: int, sessions: int) -> tuple[float, float]:
    per_kind = []
    for inspect in (False, True):
        await asyncio.sleep(2)
        before = heap_bytes(app)
        for _ in range(sessions):
            rule = {"host": HOST, "ports": [port], "inspect": inspect}
            await app.manager.create(CreateRequest(egress=[rule, {"host": OPAQUE, "ports": [port]}]))
        await asyncio.sleep(2)
        per_kind.append((heap_bytes(app) - before) / sessions / 1024)
    return per_kind[0], per_kind[1]


def start_upstream(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """An Envoy that answers 200 over TLS with the test CA's certificate (`directory`'s server.pem)."""
    config = directory / "upstream.yaml"
    config.write_text(UPSTREAM.format(port=port, cert=directory / "server.pem", key=directory / "server.key"))
    return subprocess.Popen([default_binary(), "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
                             "-l", "error", "--base-id", str(free_port())])  # fmt: skip


async def main(rounds: int, seconds: float, connections: int, sessions: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sandgate-bench-inspect-") as tmp:
        ca, _ = make_test_ca(Path(tmp), [HOST, OPAQUE])
        port = free_port()
        upstream = start_upstream(Path(tmp), port)
        try:
            async with control_plane(upstream_ca_files=(str(ca),), warm_pool_size=0, **RATES_OUT_OF_REACH) as app:
                await run(app, port, ca, rounds, seconds, connections, sessions)
        finally:
            upstream.terminate()
            upstream.wait()


async def run(app: App, port: int, ca: Path, rounds: int, seconds: float, connections: int, sessions: int) -> None:
    rules = [{"host": HOST, "ports": [port], "inspect": True}, {"host": OPAQUE, "ports": [port]}]
    session, token = await app.manager.create(CreateRequest(egress=rules))
    bundle = app.settings.state_dir / "sessions" / session.id / "ca-bundle.pem"
    trust = ssl.create_default_context(cafile=str(bundle))
    trust.load_verify_locations(cafile=str(ca))
    sock = str(app.settings.state_dir / "sessions" / session.id / "proxy.sock")
    kinds = {"inspected": HOST, "opaque": OPAQUE}
    rps: dict[str, list[float]] = {k: [] for k in kinds}
    hs: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for kind, host in kinds.items():

            async def open_tunnel(host: str = host) -> Tunnel:
                return await Tunnel.open(sock, token, host, port, trust)

            rps[kind].append(await keep_alive_rps(open_tunnel, f"{host}:{port}", connections, seconds))
            hs[kind].append(await handshake_ms(open_tunnel, f"{host}:{port}", 50))
    plain, inspected = await memory_per_session(app, port, sessions)
    print(f"command: python -m bench.inspect --rounds {rounds} --seconds {seconds} --connections {connections}"
          f" --sessions {sessions}")  # fmt: skip
    print("| measure | inspected | opaque tunnel |\n|---|---|---|")
    print(f"| keep-alive GET/s ({connections} tunnels, median of {rounds}) | "
          f"{statistics.median(rps['inspected']):.0f} | {statistics.median(rps['opaque']):.0f} |")  # fmt: skip
    print(f"| new tunnel + TLS handshake + 1 GET, ms (median of {rounds}x50) | "
          f"{statistics.median(hs['inspected']):.2f} | {statistics.median(hs['opaque']):.2f} |")  # fmt: skip
    print(f"| Envoy heap per session, KiB ({sessions} sessions) | {inspected:.0f} | {plain:.0f} (no inspected rule) |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=50)
    a = parser.parse_args()
    asyncio.run(main(a.rounds, a.seconds, a.connections, a.sessions))
