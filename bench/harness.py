"""Shared pieces of the benchmarks: an in-process control plane with its managed Envoy, test upstreams,
and small statistics helpers. Every load is bounded in count and time and targets loopback only."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from bench.from_tests import DnsServer, NoSandboxRuntime, free_port
from control_plane.app import App
from control_plane.config import Settings
from control_plane.envoy_process import default_binary

NAMES = ["allowed.test", "other.test"] + [f"h{i}.bench.test" for i in range(64)]
# For the throughput benchmarks: the per-session rate limits out of reach (the filter still runs), so they
# measure the data path, not the limit.
RATES_OUT_OF_REACH = {
    "session_requests_per_second": 1_000_000_000, "session_request_burst": 1_000_000_000,
    "session_tunnels_per_second": 1_000_000_000, "session_tunnel_burst": 1_000_000_000,
}  # fmt: skip


UPSTREAM = Path(__file__).with_name("upstream-envoy.yaml")


@asynccontextmanager
async def upstream_envoy(port: int, work: Path) -> AsyncIterator[None]:
    """A second Envoy on 127.0.0.1:`port` answering 200 itself (bench/upstream-envoy.yaml), so that neither
    Python nor a slow server bounds a run; stopped by its pid at the end."""
    config = work / f"upstream-{port}.yaml"
    config.write_text(UPSTREAM.read_text().replace("PORT", str(port)))
    flags = ["--disable-hot-restart", "--concurrency", "1", "--log-level", "error"]
    upstream = await asyncio.create_subprocess_exec(str(default_binary()), "-c", str(config), *flags)
    try:
        yield
    finally:
        upstream.kill()  # SIGKILL: an answering Envoy holds nothing worth a graceful drain
        await upstream.wait()


@asynccontextmanager
async def control_plane(**overrides: object) -> AsyncIterator[App]:
    with (
        tempfile.TemporaryDirectory(prefix="sandgate-bench-") as tmp,
        DnsServer(dict.fromkeys(NAMES, "127.0.0.1")) as dns,
    ):
        settings = Settings(
            state_dir=Path(tmp) / "state", grpc_addr=f"127.0.0.1:{free_port()}",
            admin_addr=f"127.0.0.1:{free_port()}", node_id=f"bench-{free_port()}",
            api_token="bench", admin_token="bench", dns_resolvers=(f"127.0.0.1:{dns.port}",),
            max_sessions=5000, total_memory_mb=5000 * 512, total_cpus=5000.0,  # sandbox-less sessions
            forbidden_exceptions=("127.0.0.1/32",), **overrides,  # type: ignore[arg-type]
        )  # fmt: skip
        app = App(settings, runtime=NoSandboxRuntime())
        await app.start()
        try:
            yield app
        finally:
            await app.stop()


def proxy_auth(token: str) -> str:
    return "Basic " + base64.b64encode(f"sandgate:{token}".encode()).decode()


class KeepAliveProxyClient:
    """One keep-alive HTTP/1.1 connection to a session's unix-socket listener."""

    def __init__(self, socket_path: Path, token: str) -> None:
        self._path = socket_path
        self._auth = proxy_auth(token)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def status(self, url_host: str, port: int) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_unix_connection(str(self._path))
        assert self._reader is not None
        target = f"{url_host}:{port}"
        head = f"GET http://{target}/ HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {self._auth}\r\n\r\n"
        self._writer.write(head.encode())
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self._reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        if self._writer:
            self._writer.close()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> str:
    p50, p99 = percentile(values, 50), percentile(values, 99)
    return f"p50 {p50:.2f} / p99 {p99:.2f} (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
