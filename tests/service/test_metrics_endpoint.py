"""/metrics of two control planes in one process: each serves its own registry, over its own admin server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from control_plane.app import App
from control_plane.config import Settings
from control_plane.errors import InvalidArgument
from control_plane.sessions.manager import CreateRequest
from tests.support.metrics import kinds, sample
from tests.support.no_sandbox import NoSandboxRuntime


@pytest.fixture()
async def two_apps(tmp_path: Path) -> AsyncIterator[tuple[App, App]]:
    apps = []
    for name in ("one", "two"):
        settings = Settings(state_dir=tmp_path / name, grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0",
                            node_id=f"metrics-{name}", manage_envoy=False, warm_pool_size=0)  # fmt: skip
        apps.append(App(settings, runtime=NoSandboxRuntime()))
        await apps[-1].start()
    yield apps[0], apps[1]
    for app in apps:
        await app.stop()


async def scrape(app: App) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{app.ports.admin}/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        return await resp.text()


async def test_each_app_serves_its_own_registry_without_a_token(two_apps: tuple[App, App]) -> None:
    one, two = two_apps
    with pytest.raises(InvalidArgument):
        await one.manager.create(CreateRequest(ttl_seconds=10**9))
    first, second = await scrape(one), await scrape(two)
    assert sample(first, "sandgate_session_create_failures_total", reason="invalid_argument") == 1
    assert sample(second, "sandgate_session_create_failures_total", reason="invalid_argument") is None
    for text in (first, second):
        assert kinds(text)["sandgate_session_create_seconds"] == "histogram"
        assert sample(text, "sandgate_sessions") == 0 and sample(text, "process_cpu_seconds_total") is not None
