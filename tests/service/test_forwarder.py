"""The in-sandbox forwarder on its own, run on this host: TCP on 127.0.0.1 spliced to a unix socket that
a test server (standing in for Envoy) listens on. What the sandbox adds is in tests/e2e/test_tunnels.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import resource
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from control_plane.config import Settings
from tests.support.service import free_port
from tests.support.stream_servers import StreamServer, digest_reply

FORWARDER = Settings().forwarder_binary


class Forwarder:
    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return sock

    def children(self) -> list[int]:
        kids = []
        for entry in os.listdir("/proc"):
            with contextlib.suppress(OSError):
                if entry.isdigit() and Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(
                    self.proc.pid
                ):
                    kids.append(int(entry))
        return kids


@pytest.fixture()
def start_forwarder(tmp_path: Path) -> Iterator[Callable[..., Forwarder]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(socket_path: Path, nofile: int | None = None) -> Forwarder:
        port = free_port()
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        proc = subprocess.Popen([str(FORWARDER), "serve", str(port), str(socket_path)], preexec_fn=limit)
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not listening(port):  # not probed by connecting: that connection would reach the server
            assert proc.poll() is None, "the forwarder exited"
            assert time.monotonic() < deadline, "the forwarder does not listen"
            time.sleep(0.02)
        return Forwarder(proc, port)

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def listening(port: int) -> bool:
    """Whether 127.0.0.1:`port` is in LISTEN state, from /proc/net/tcp."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(row.split()[1] == local and row.split()[3] == "0A" for row in rows)


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_client_half_close_reaches_the_server_and_its_reply_comes_back(
    tmp_path: Path, start_forwarder: Callable[..., Forwarder]
) -> None:
    with StreamServer.digest(tmp_path / "envoy.sock"):
        fwd = start_forwarder(tmp_path / "envoy.sock")
        payload = os.urandom(1000)
        with fwd.connect() as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == digest_reply(payload)


def test_server_half_close_reaches_the_client_which_can_still_send(
    tmp_path: Path, start_forwarder: Callable[..., Forwarder]
) -> None:
    """The unix side speaks, shuts its write side, then reads what the client still sends."""
    fwd = start_forwarder(tmp_path / "envoy.sock")
    received: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "envoy.sock"))
    listener.listen()

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"greeting\n")
            conn.shutdown(socket.SHUT_WR)
            received.append(recv_all(conn))

    server = threading.Thread(target=serve_one)
    server.start()
    payload = os.urandom(200_000)
    with fwd.connect() as sock:
        assert recv_all(sock) == b"greeting\n"  # the server's EOF arrived, the connection is still up
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        server.join(10)
    listener.close()
    assert received == [payload]


def test_large_transfers_both_ways_arrive_intact(tmp_path: Path, start_forwarder: Callable[..., Forwarder]) -> None:
    """16 MiB each way at once on four connections: more than any buffer, so back-pressure and partial
    writes happen; every byte arrives, in order."""
    with StreamServer.echo(tmp_path / "envoy.sock"):
        fwd = start_forwarder(tmp_path / "envoy.sock")
        payloads = [os.urandom(16 << 20) for _ in range(4)]
        results: list[bytes] = [b""] * 4

        def run(i: int) -> None:
            with fwd.connect() as sock:
                writer = threading.Thread(target=lambda: (sock.sendall(payloads[i]), sock.shutdown(socket.SHUT_WR)))
                writer.start()
                results[i] = hashlib.sha256(recv_all(sock)).digest()
                writer.join()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == [hashlib.sha256(p).digest() for p in payloads]


async def _echo_many(port: int, count: int) -> list[bool]:
    async def one(i: int) -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = f"tunnel {i}\n".encode() * 10
        writer.write(message)
        await writer.drain()
        echoed = await reader.readexactly(len(message))
        writer.close()
        await writer.wait_closed()
        return echoed == message

    connections = [asyncio.create_task(one(i)) for i in range(count)]
    return await asyncio.wait_for(asyncio.gather(*connections), 60)


def test_one_process_serves_many_connections_at_once(tmp_path: Path, start_forwarder: Callable[..., Forwarder]) -> None:
    with StreamServer.echo(tmp_path / "envoy.sock"):
        fwd = start_forwarder(tmp_path / "envoy.sock")
        held = [fwd.connect() for _ in range(300)]
        for sock in held:
            sock.sendall(b"ping")
        assert all(sock.recv(4) == b"ping" for sock in held)
        assert fwd.children() == []
        assert os.listdir(f"/proc/{fwd.proc.pid}/task") == [str(fwd.proc.pid)]  # one thread, no forks
        for sock in held:
            sock.close()
        assert all(asyncio.run(_echo_many(fwd.port, 500)))


def test_beyond_its_descriptors_it_closes_new_connections_and_recovers(
    tmp_path: Path, start_forwarder: Callable[..., Forwarder]
) -> None:
    """With 64 descriptors the forwarder holds (64 - 16) / 2 = 24 connections; the 25th is accepted and
    closed; once one ends, a new one works again."""
    with StreamServer.echo(tmp_path / "envoy.sock"):
        fwd = start_forwarder(tmp_path / "envoy.sock", nofile=64)
        held = [fwd.connect() for _ in range(24)]
        for sock in held:
            sock.sendall(b"x")
            assert sock.recv(1) == b"x"
        with fwd.connect() as extra, contextlib.suppress(ConnectionResetError):
            extra.sendall(b"x")
            assert extra.recv(1) == b""
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:
            with fwd.connect() as sock:
                sock.sendall(b"y")
                if sock.recv(1) == b"y":
                    break
            assert time.monotonic() < deadline, "no connection works after one ended"
            time.sleep(0.05)
        assert fwd.proc.poll() is None
        for sock in held:
            sock.close()


def test_a_reset_after_a_half_close_closes_the_other_side(
    tmp_path: Path, start_forwarder: Callable[..., Forwarder]
) -> None:
    """The client half-closes, then resets: nothing reads its side any more, yet the unix side is closed."""
    fwd = start_forwarder(tmp_path / "envoy.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "envoy.sock"))
    listener.listen()
    client = fwd.connect()
    client.sendall(b"request")
    client.shutdown(socket.SHUT_WR)
    upstream, _ = listener.accept()
    upstream.settimeout(10)
    assert recv_all(upstream) == b"request"
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset
    poller = select.poll()
    poller.register(upstream, select.POLLHUP)
    assert poller.poll(10_000), "the forwarder kept the unix side open"  # HUP: the other end is closed
    upstream.close()
    listener.close()
    assert fwd.proc.poll() is None
