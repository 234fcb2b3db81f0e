"""A static test site: serves a map of URL paths to files from memory, plain or over TLS.

The package-repository builders (pypi_index, npm_registry, apt_repo) each produce such a map; one site
can hold several of them under different path prefixes.
"""

from __future__ import annotations

import posixpath
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from tests.support.http_host import HttpHost, reply


@dataclass(frozen=True)
class File:
    body: bytes
    content_type: str = "application/octet-stream"


Files = dict[str, File]


class _FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        site: FileHost = self.server.host  # type: ignore[attr-defined]
        path = _normalize(urlsplit(self.path).path)
        site.record(path)
        found = site.files.get(path)
        if found is None:
            reply(self, 404, b"not found\n")
        else:
            reply(self, 200, found.body, found.content_type)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


def _normalize(path: str) -> str:
    """`/debian/./Packages` (as apt asks for a flat repository's files) is `/debian/Packages`."""
    clean = posixpath.normpath(path)
    return clean + "/" if path.endswith("/") and clean != "/" else clean


class FileHost(HttpHost):
    """A site whose `files` (path -> File) may be filled after start, once its port is known."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(_FileHandler, tls)
        self.files: Files = {}
        self.requested: list[str] = []
        self._lock = threading.Lock()

    def record(self, path: str) -> None:
        with self._lock:
            self.requested.append(path)
