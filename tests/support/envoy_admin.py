"""Envoy's admin API over its unix socket (urllib speaks TCP only)."""

from __future__ import annotations

import http.client
import socket
from pathlib import Path


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection to a server on a unix socket."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def envoy_admin_get(admin_socket: Path, path: str, timeout: float = 2.0) -> str:
    """GET `path` from Envoy's admin; the body as text. Raises OSError if it cannot connect or answers >= 400."""
    conn = UnixHTTPConnection(admin_socket, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode()
    finally:
        conn.close()
    if resp.status >= 400:
        raise OSError(f"Envoy admin {path}: {resp.status} {body.strip()[:200]}")
    return body
