"""/metrics of two control planes in one process: each serves its own registry, over its own admin server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
from envoy_data_plane.envoy.service.discovery.v3 import DeltaDiscoveryRequest
from envoy_data_plane.google.rpc import Status

from control_plane.app import App
from control_plane.config import Settings
from control_plane.errors import InvalidArgument
from control_plane.sessions.manager import CreateRequest
from control_plane.xds.types import CLUSTER
from tests.service.test_control_channel import FakeEnvoy, until
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
        await one.parts.manager.create(CreateRequest(ttl_seconds=10**9))
    first, second = await scrape(one), await scrape(two)
    assert sample(first, "sandgate_session_create_failures_total", reason="invalid_argument") == 1
    assert sample(second, "sandgate_session_create_failures_total", reason="invalid_argument") is None
    for text in (first, second):
        assert kinds(text)["sandgate_session_create_seconds"] == "histogram"
        assert sample(text, "sandgate_sessions") == 0 and sample(text, "process_cpu_seconds_total") is not None


class NackingEnvoy(FakeEnvoy):
    """Rejects every response, as an Envoy does a config it cannot load."""

    async def run(self) -> None:
        self.call = self._call(self._outgoing())
        async for response in self.call:
            self.responses += 1
            nack = DeltaDiscoveryRequest(type_url=response.type_url, response_nonce=response.nonce,
                                         error_detail=Status(code=3, message="rejected by the test"))  # fmt: skip
            self._requests.put_nowait(nack)


async def test_every_nack_is_counted_by_type(two_apps: tuple[App, App]) -> None:
    one, two = two_apps
    async with grpc.aio.insecure_channel(one.control_address.grpc_target) as channel:
        envoy = NackingEnvoy(channel, one.settings.node_id, acks=False)
        task = asyncio.create_task(envoy.run())
        nacks = one.parts.metrics.registry.get_sample_value
        await until(lambda: (nacks("sandgate_xds_nacks_total", {"type_url": CLUSTER}) or 0) >= 1)
        task.cancel()
    assert sample(await scrape(one), "sandgate_xds_nacks_total", type_url=CLUSTER)
    assert sample(await scrape(two), "sandgate_xds_nacks_total") is None
