"""A git repository over smart HTTP: `git http-backend` run as a CGI program for each request."""

from __future__ import annotations

import os
import ssl
import subprocess
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.http_host import HttpHost, reply

REPO = "tiny.git"
README = "hello from the tiny git repository\n"
_AUTHOR = ["-c", "user.name=Sandgate tests", "-c", "user.email=tests@sandgate.test"]


def make_repository(root: Path) -> Path:
    """A bare repository `root/tiny.git` with one commit on `main` adding README (holding README)."""
    work = root / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README").write_text(README)
    subprocess.run(["git", "-C", str(work), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(work), *_AUTHOR, "commit", "-q", "-m", "tiny"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / REPO)], check=True)
    return root / REPO


class _GitHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        host: GitHost = self.server.host  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        host.authorizations.append(self.headers.get("authorization", ""))
        if host.token and self.headers.get("authorization") != f"Bearer {host.token}":
            self._body()
            reply(self, 401, b"token required\n")
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(host.root),
            "GIT_HTTP_EXPORT_ALL": "1", "REQUEST_METHOD": self.command, "PATH_INFO": url.path,
            "QUERY_STRING": url.query, "CONTENT_TYPE": self.headers.get("content-type", ""),
            "REMOTE_ADDR": self.client_address[0], "GIT_PROTOCOL": self.headers.get("git-protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("content-encoding", ""),
        }  # fmt: skip
        host.requested.append(f"{self.command} {url.path}")
        done = subprocess.run(["git", "http-backend"], input=self._body(), env=env, capture_output=True, check=False)
        head, _, body = done.stdout.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
        status = int(headers.pop("Status", "200").split()[0])
        reply(self, status, body, headers.get("Content-Type", "application/octet-stream"))

    do_POST = do_GET

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()  # the empty trailer
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def log_message(self, format: str, *args: object) -> None:
        pass


class GitHost(HttpHost):
    """Serves the repositories under `root` (clone `{url(host)}/tiny.git`)."""

    def __init__(self, root: Path, tls: ssl.SSLContext | None = None, token: str = "") -> None:
        super().__init__(_GitHandler, tls)
        self.root = root
        self.requested: list[str] = []
        self.token = token  # if set, every request must carry `Authorization: Bearer <token>`
        self.authorizations: list[str] = []  # the Authorization header of each request ("" if none)
