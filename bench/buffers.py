"""What one unread download costs Envoy: its memory per connection, at two buffer limits, side by side.

    .venv/bin/python -m bench.buffers [--connections 400]

A loopback "firehose" upstream answers every connection with an endless response (an HTTP head, then
zeros) and writes as fast as its peer reads. A session opens CONNECTIONS connections to its listener,
each a CONNECT tunnel (or a plain-HTTP GET) to the firehose, reads the response head and then nothing.
Envoy reads from the firehose until its buffers for that connection are full (flow control); the figure
is Envoy's RSS growth divided by the connections, once the RSS has settled (each kind in a fresh Envoy:
memory freed by one run would be reused by the next). First, what the limit costs
a client that does read: one tunnel's download rate over 3 s. Real listeners in the managed Envoy, no
containers; each buffer limit in its own control plane.
"""

from __future__ import annotations

import argparse
import asyncio
import selectors
import socket
import threading
import time
from pathlib import Path

from bench.harness import control_plane, proxy_auth
from bench.memory import rss_kib
from control_plane.sessions.manager import CreateRequest

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 1099511627776\r\n\r\n"
CHUNK = bytes(65536)
LIMITS = (1 << 20, 32 << 10)  # the old listener limit and the new default (connection_buffer_bytes)


class Firehose:
    """Writes an endless response to every connection, as fast as each peer takes it; never reads."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Firehose:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]

    def _run(self) -> None:
        while not self._stop:
            for key, _ in self._selector.select(0.1):
                if key.fileobj is self._listener:
                    conn, _ = self._listener.accept()
                    conn.setblocking(False)
                    conn.send(HEAD)
                    self._selector.register(conn, selectors.EVENT_WRITE)
                else:
                    self._write(key.fileobj)  # type: ignore[arg-type]

    def _write(self, conn: socket.socket) -> None:
        try:
            while conn.send(CHUNK):
                pass
        except BlockingIOError:
            return
        except OSError:
            self._selector.unregister(conn)
            conn.close()


async def settled_rss(pid: int) -> int:
    """Envoy's RSS in KiB once it stops growing (two readings 1 s apart within 1 %), at most 30 s."""
    previous = rss_kib(pid)
    for _ in range(30):
        await asyncio.sleep(1)
        now = rss_kib(pid)
        if abs(now - previous) <= previous / 100:
            return now
        previous = now
    return previous


async def measure(limit: int, kind: str, connections: int, firehose: Firehose) -> tuple[float, float]:
    """KiB per unread download of this kind, and one tunnel's download rate in MiB/s (before them)."""
    async with control_plane(warm_pool_size=0, connection_buffer_bytes=limit) as app:
        assert app.envoy and app.envoy.pid
        rule = {"host": "allowed.test", "ports": [firehose.port]}
        session, token = await app.parts.manager.create(CreateRequest(egress=[rule]))
        path = app.settings.state_dir / "sessions" / session.id / "proxy.sock"
        rate = await download_rate(path, token, firehose.port, seconds=3)
        before = await settled_rss(app.envoy.pid)
        held = [await open_download(path, token, kind, firehose.port) for _ in range(connections)]
        cost = (await settled_rss(app.envoy.pid) - before) / connections
        for _, writer in held:
            writer.close()
        return cost, rate


async def download_rate(path: Path, token: str, port: int, seconds: float) -> float:
    """MiB/s of one tunnel whose client reads as fast as it can."""
    reader, writer = await open_download(path, token, "CONNECT", port, keep_reading=True)
    total, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        total += len(await reader.read(1 << 20))
    writer.close()
    return total / seconds / (1 << 20)


async def open_download(
    path: Path, token: str, kind: str, port: int, keep_reading: bool = False
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 16)
    authority = f"allowed.test:{port}"
    target = authority if kind == "CONNECT" else f"http://{authority}/"
    head = f"{kind} {target} HTTP/1.1\r\nHost: {authority}\r\nProxy-Authorization: {proxy_auth(token)}\r\n\r\n"
    writer.write(head.encode())
    status = await reader.readline()
    assert b" 200 " in status, status
    if not keep_reading:
        writer.transport.pause_reading()  # and never read again: the download backs up into Envoy
    return reader, writer


async def main(connections: int) -> None:
    print(f"command: python -m bench.buffers --connections {connections}")
    print("| per-connection buffer limit | Envoy KiB per unread download: CONNECT tunnel | plain-HTTP GET |"
          " one tunnel's download, MiB/s |")  # fmt: skip
    print("|---|---|---|---|")
    started = time.monotonic()
    with Firehose() as firehose:
        for limit in LIMITS:
            tunnel, rate = await measure(limit, "CONNECT", connections, firehose)
            plain, _ = await measure(limit, "GET", connections, firehose)
            print(f"| {limit // 1024} KiB | {tunnel:.0f} | {plain:.0f} | {rate:.0f} |")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=400)
    asyncio.run(main(parser.parse_args().connections))
