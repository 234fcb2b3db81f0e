"""A threaded HTTP/1.1 test host on loopback, plain or TLS, for any request handler class.

TLS is set up per connection in the connection's own thread, so one client that stalls in its handshake
(or rejects the certificate) never holds up the others.
"""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None
    host: Any = None  # the HttpHost that owns this server; handlers reach their site's state through it

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a client that refused our certificate: its own error message says why
        with conn:
            super().finish_request(conn, client_address)


class HttpHost:
    """Serves `handler` on 127.0.0.1 (an ephemeral port unless given) until the `with` block ends."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.tls, self.server.host = tls, self
        self.port: int = self.server.server_address[1]
        self.scheme = "https" if tls else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, host: str) -> str:
        """The base URL of this server under the DNS name `host`, e.g. `https://allowed.test:40123`."""
        return f"{self.scheme}://{host}:{self.port}"

    def __enter__(self) -> HttpHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "text/plain") -> None:
    """One complete HTTP/1.1 response, written in a single segment (no delayed-ACK stall between parts)."""
    head = (
        f"HTTP/1.1 {status} {handler.responses.get(status, ('',))[0]}\r\n"
        f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    try:
        handler.wfile.write(head.encode() + (b"" if handler.command == "HEAD" else body))
    except (TimeoutError, ConnectionError, ssl.SSLError):
        handler.close_connection = True
