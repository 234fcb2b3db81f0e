"""The orchestration core as the service wires it (`state_dir.prepare_state_dir`, then `wiring.build`) over the
in-memory runtime, with a fake Envoy connected and a clock the test moves: for unit tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control_plane.config import HostSize, Settings
from control_plane.domain.session import Limits
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.keyring import Keyring
from control_plane.sessions.manager import ManagerSettings, SessionManager
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.sandbox_calls import SandboxCalls
from control_plane.state_dir import prepare_state_dir
from control_plane.store import Store
from control_plane.wiring import HostFacts, build
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.publisher import ConfigPublisher
from tests.support.fake_envoy import FakeEnvoy, fake_envoy
from tests.support.no_sandbox import NoSandboxRuntime

NODE = "unit-node"
IMAGE = "sandgate-sandbox:test"
LIMITS = Limits(memory_mb=512, cpus=1.0, pids=512)
HOST = HostFacts(own_addresses=(), size=HostSize(memory_mb=4096, cpus=4))


@dataclass
class Clock:
    """A clock the test moves by hand (seconds since the epoch)."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


@dataclass
class Core:
    settings: ManagerSettings
    store: Store
    clock: Clock
    keyring: Keyring
    registry: SessionRegistry
    cache: SnapshotCache
    publisher: ConfigPublisher
    egress: EgressEditor
    runtime: NoSandboxRuntime
    manager: SessionManager
    calls: SandboxCalls
    pool: WarmPool
    envoy: FakeEnvoy


def core_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Four sessions of the default limits at most, no warm pool unless asked, a stand-in forwarder."""
    forwarder = state_dir.parent / "sandgate-forward"
    forwarder.write_bytes(b"#!/bin/true\n")
    values: dict[str, Any] = {
        "state_dir": state_dir, "node_id": NODE, "api_token": "t", "admin_token": "t", "default_image": IMAGE,
        "forwarder_binary": forwarder, "default_ttl_seconds": 600, "max_ttl_seconds": 3600, "max_sessions": 4,
        "total_memory_mb": 4 * 512, "total_cpus": 4.0, "warm_pool_size": 0, "apply_timeout_seconds": 5.0,
        "forbid_host_addresses": False, **overrides,
    }  # fmt: skip
    return Settings(**values)


@asynccontextmanager
async def running_core(state_dir: Path, **overrides: Any) -> AsyncIterator[Core]:
    """The core with one fake Envoy of its node connected; the pool is built but not started. Closes the state
    directory's databases and the thread pools afterwards."""
    settings = core_settings(state_dir, **overrides)
    state = prepare_state_dir(settings)
    clock = Clock()
    runtime = NoSandboxRuntime(images={IMAGE})
    parts = build(settings, state, HOST, runtime, clock)
    parts.publisher.ensure_node(NODE)
    try:
        async with fake_envoy(parts.cache, NODE, parts.manager.settings.sessions_dir) as envoy:
            p = parts
            yield Core(p.manager.settings, state.store, clock, p.keyring, p.registry, p.cache, p.publisher,
                       p.egress, runtime, p.manager, p.calls, p.pool, envoy)  # fmt: skip
            await parts.pool.stop()
    finally:
        state.close()
        parts.workers.shutdown()


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Until `condition()` holds; TimeoutError (the test fails) after `timeout` seconds. The conditions are
    plain state (a count, a file) that no event announces, so this looks every few milliseconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
