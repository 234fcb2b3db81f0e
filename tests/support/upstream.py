"""Test upstreams on loopback: plain HTTP, HTTPS with a certificate from a test CA, HTTP/2, and a tarpit."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with JSON describing what arrived."""

    protocol_version = "HTTP/1.1"

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(errors="replace"), "server": "sandgate-test-upstream"}  # fmt: skip
        self.server.requests.append(seen)  # type: ignore[attr-defined]
        # A host that does not echo shows the client nothing of what it received (the tests read `requests`).
        payload = json.dumps(seen if self.server.echo else {"server": "sandgate-test-upstream"}).encode()  # type: ignore[attr-defined]
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n\r\n"
        # One write: headers and body in separate segments meet delayed ACKs and cost 40 ms.
        self.wfile.write(head.encode() + (b"" if self.command == "HEAD" else payload))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _reply

    def log_message(self, format: str, *args: object) -> None:
        pass


class Upstream:
    def __init__(
        self, tls: ssl.SSLContext | None = None, port: int = 0, host: str = "127.0.0.1", echo: bool = True
    ) -> None:
        self.server = ThreadingHTTPServer((host, port), EchoHandler)
        self.server.daemon_threads = True
        self.server.echo = echo  # type: ignore[attr-defined]
        self.requests: list[dict[str, object]] = []  # what arrived, in order
        self.server.requests = self.requests  # type: ignore[attr-defined]
        if tls:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_test_ca(directory: Path, hostnames: list[str]) -> tuple[Path, ssl.SSLContext]:
    """A CA (written to `ca.pem`) and a server context whose certificate it signed for `hostnames`."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sandgate test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hostnames]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return ca_path, context


class Tarpit:
    """A loopback TCP port whose connections complete (into the listen backlog) and are never read: an
    upstream that holds tunnels open for nothing, without a thread per connection."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]

    def __enter__(self) -> Tarpit:
        self._sock.listen(4096)
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


ENVOY_UPSTREAM = """
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: upstream
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes: [{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_string: ok}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
"""


class EnvoyUpstream:
    """A second Envoy on loopback answering 200 itself, over HTTP/1.1 or HTTP/2 (h2c, prior knowledge)."""

    def __init__(self, binary: Path, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._config = directory / "envoy-upstream.yaml"
        self._config.write_text(ENVOY_UPSTREAM.replace("PORT", str(self.port)))
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> EnvoyUpstream:
        flags = ["--disable-hot-restart", "--concurrency", "1", "--log-level", "error"]
        self._proc = subprocess.Popen([str(self._binary), "-c", str(self._config), *flags])
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert self._proc.poll() is None and time.monotonic() < deadline, "the upstream Envoy did not start"
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self._proc:
            self._proc.terminate()
            self._proc.wait(10)
