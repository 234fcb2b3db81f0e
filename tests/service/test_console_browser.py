"""A host name made of HTML in the decision log, shown by the console in a real headless Chromium.

No sandbox can get one there (Envoy answers such a request 400 and logs no host: tests/e2e/test_console.py),
so the decision is recorded directly, as the access-log receiver would, and the page must show it as text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.app import App
from control_plane.audit.events import DecisionEvent
from control_plane.config import Settings
from tests.support.browser import HOSTILE, Browser, missing
from tests.support.no_sandbox import NoSandboxRuntime

# aiohttp 3.14 warns on the admin server's plain-string request key (http.OPERATOR_KEY); not this test's subject.
TOKEN = "console-browser-token"


@pytest.fixture()
async def app(tmp_path: Path) -> AsyncIterator[App]:
    if missing():
        pytest.skip(f"needs {missing()}: apt-get install chromium chromium-driver")
    settings = Settings(state_dir=tmp_path / "state", grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0",
                        node_id="console-browser", manage_envoy=False, warm_pool_size=0, admin_token=TOKEN)  # fmt: skip
    app = App(settings, runtime=NoSandboxRuntime())
    await app.start()
    yield app
    await app.stop()


async def test_a_host_made_of_html_is_shown_as_text(app: App) -> None:
    # The browser blocks: it runs on a thread, so that this loop goes on serving the page it loads.
    browser = await asyncio.to_thread(Browser, f"http://127.0.0.1:{app.ports.admin}")
    try:
        await asyncio.to_thread(browser.sign_in, TOKEN)
        await asyncio.to_thread(browser.go, "#/decisions")
        live = lambda: browser.find("#decisions-status").text == "live"  # noqa: E731
        await asyncio.to_thread(browser.wait, live, "the decision stream to be live")
        event = DecisionEvent(id=0, time=time.time(), session_id="s-html", method="GET", host=HOSTILE, port=443,
                              verdict="deny", reason="host-not-allowed", response_code=403)  # fmt: skip
        app.parts.decisions.record_many([event])
        cell = await asyncio.to_thread(browser.wait_css, "#decisions-table td.host", "the decision", "<img")
        assert cell.text == f"{HOSTILE}:443"
        assert await asyncio.to_thread(browser.find_all, "#decisions-table img, #decisions-table script") == []
        await asyncio.to_thread(browser.screenshot, "11-escaped-host")
        await asyncio.to_thread(browser.go, "#/overview")  # the top destinations draw it as SVG text
        label = await asyncio.to_thread(browser.wait_css, "#top-requests svg text", "the destination's bar", "<img")
        assert label.text.startswith("<img src=x")
        await asyncio.to_thread(browser.no_script_ran)
    finally:
        await asyncio.to_thread(browser.close)
