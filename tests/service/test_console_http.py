"""The console's files over a real admin server: open, with a strict CSP and the other browser headers; the
API behind them still needs the token; a write from another site's Origin is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from control_plane.admin.console import CSP
from control_plane.app import App
from control_plane.config import Settings
from tests.support.no_sandbox import NoSandboxRuntime

# aiohttp 3.14 warns on the admin server's plain-string request key (http.OPERATOR_KEY); not this test's subject.
TOKEN = "console-admin-token"
CONSOLE_FILES = ["index.html", "app.css", "main.js", "api.js", "dom.js", "charts.js", "fleet.js", "sessions.js",
                 "decisions.js", "approvals.js", "detail.js"]  # fmt: skip


@pytest.fixture()
async def base(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(state_dir=tmp_path / "state", grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0",
                        node_id="console-http", manage_envoy=False, warm_pool_size=0, admin_token=TOKEN)  # fmt: skip
    app = App(settings, runtime=NoSandboxRuntime())
    await app.start()
    yield f"http://127.0.0.1:{app.ports.admin}"
    await app.stop()


async def test_every_console_file_is_served_with_the_strict_headers(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for name in ["", *CONSOLE_FILES]:
            async with http.get(f"{base}/console/{name}") as resp:
                assert resp.status == 200, name
                assert resp.headers["Content-Security-Policy"] == CSP
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert resp.headers["Referrer-Policy"] == "no-referrer"
        async with http.get(f"{base}/console/") as resp:
            assert resp.content_type == "text/html" and "Sandgate console" in await resp.text()
        async with http.get(f"{base}/console/main.js") as resp:
            assert resp.content_type == "text/javascript"
    assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP and "unsafe" not in CSP


async def test_console_redirects_and_serves_nothing_else(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/console", allow_redirects=False) as resp:
            assert (resp.status, resp.headers["Location"]) == (302, "/console/")
        for name in ["nope.js", "__init__.py", "..%2Fadmin%2Fhttp.py", "index.HTML"]:
            async with http.get(f"{base}/console/{name}") as resp:
                assert resp.status == 404, name
        async with http.get(f"{base}/v1/sessions") as resp:
            assert resp.status == 401  # the files are open; the data behind them is not


async def test_a_write_from_another_origin_is_refused(base: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        for origin in ["http://evil.example", "null", base.replace("127.0.0.1", "localhost")]:
            headers = {**auth, "Origin": origin}
            async with http.post(f"{base}/v1/approvals/a1", json={"decision": "deny"}, headers=headers) as resp:
                body = await resp.json()
                assert (resp.status, body["error"]["code"]) == (403, "cross_origin"), origin
        # Its own origin, and a client that sends none (the CLI, the SDK), reach the route: no such approval.
        for headers in [{**auth, "Origin": base}, auth]:
            async with http.post(f"{base}/v1/approvals/a1", json={"decision": "deny"}, headers=headers) as resp:
                body = await resp.json()
                assert resp.status in (400, 404) and body["error"]["code"] != "cross_origin", body
        # A read from another origin is not a write: the token alone guards it.
        async with http.get(f"{base}/v1/sessions", headers={**auth, "Origin": "http://evil.example"}) as resp:
            assert resp.status == 200
