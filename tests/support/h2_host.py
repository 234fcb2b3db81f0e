"""An HTTPS test host that speaks HTTP/2 (ALPN h2, HTTP/1.1 as fallback): hypercorn with a tiny ASGI app.

Every response is JSON naming the HTTP version the request arrived with, so a test can tell that a
client really spoke h2 inside its proxy tunnel.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (event := (await receive())["type"]) != "lifespan.shutdown":
            await send({"type": f"{event}.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = json.dumps({"http_version": scope["http_version"], "path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class H2Host:
    """Serves on 127.0.0.1 with the certificate and key files given (e.g. make_test_ca's server.pem/.key)."""

    def __init__(self, cert: Path, key: Path) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._config = Config()
        self._config.certfile, self._config.keyfile = str(cert), str(key)
        self._config.bind = [f"fd://{os.dup(self._sock.fileno())}"]  # hypercorn closes what it is given
        self._config.accesslog = self._config.errorlog = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        self._loop.run_until_complete(serve(_app, self._config, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]

    def __enter__(self) -> H2Host:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()
        self._sock.close()
