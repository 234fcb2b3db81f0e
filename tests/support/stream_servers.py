"""Raw stream test servers for tunnels: an echo server, one that answers only after the client's EOF, and
one that sends a stream and ends first.

Each runs its accept loop in a thread and serves every connection in a thread of its own, on TCP
127.0.0.1 (port 0: `.port` says which) or on a unix socket path (`.path`), so the same servers stand in
for an upstream behind Envoy and for Envoy behind the in-sandbox forwarder.
"""

from __future__ import annotations

import hashlib
import socket
import socketserver
import threading
from pathlib import Path


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        while data := sock.recv(65536):
            sock.sendall(data)


class _DigestAfterEof(socketserver.BaseRequestHandler):
    """Reads to EOF, then writes `<bytes received> <sha256 hex>\\n` and closes: a reply that exists only
    if the client's half-close reached the server and the server's answer could still travel back."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        digest, count = hashlib.sha256(), 0
        while data := sock.recv(65536):
            digest.update(data)
            count += len(data)
        sock.sendall(f"{count} {digest.hexdigest()}\n".encode())


class _Download(socketserver.BaseRequestHandler):
    """Reads a line `N`, sends N bytes of a known stream (`download_bytes`), shuts its write side, then
    reads to EOF: the server ends first, as a download does."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        line = b""
        while not line.endswith(b"\n") and (byte := sock.recv(1)):
            line += byte
        sock.sendall(download_bytes(int(line or b"0")))
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def download_bytes(size: int) -> bytes:
    """The download server's stream: 4 KiB blocks, block i being sha256(str(i)) repeated."""
    blocks = (hashlib.sha256(str(i).encode()).digest() * 128 for i in range(-(-size // 4096)))
    return b"".join(blocks)[:size]


def digest_reply(payload: bytes) -> bytes:
    """What the digest server answers to `payload`."""
    return f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024


class StreamServer:
    """`StreamServer.echo()` or `StreamServer.digest()`, on TCP loopback, or on `unix_path` if given."""

    def __init__(self, handler: type[socketserver.BaseRequestHandler], unix_path: Path | None = None) -> None:
        self.server: socketserver.BaseServer
        if unix_path is None:
            self.server = _TcpServer(("127.0.0.1", 0), handler)
            self.port = int(self.server.server_address[1])  # type: ignore[index]
        else:
            self.server = _UnixServer(str(unix_path), handler)
            self.port = 0
        self.path = unix_path
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @classmethod
    def echo(cls, unix_path: Path | None = None) -> StreamServer:
        return cls(_Echo, unix_path)

    @classmethod
    def digest(cls, unix_path: Path | None = None) -> StreamServer:
        return cls(_DigestAfterEof, unix_path)

    @classmethod
    def download(cls, unix_path: Path | None = None) -> StreamServer:
        return cls(_Download, unix_path)

    def __enter__(self) -> StreamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
