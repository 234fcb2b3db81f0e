"""The orchestration core wired as the service wires it (store, keyring, registry, cache, publisher, egress
editor, session manager) over the in-memory runtime and the fake Envoy: for unit tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control_plane.domain.capacity import Capacity
from control_plane.domain.session import Limits
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.keyring import Keyring
from control_plane.sessions.manager import ManagerSettings, SessionManager
from control_plane.sessions.registry import SessionRegistry
from control_plane.store import Store
from control_plane.xds.builders import EgressSettings
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.publisher import ConfigPublisher
from tests.support.fake_envoy import FakeEnvoy, fake_envoy
from tests.support.no_sandbox import NoSandboxRuntime

NODE = "unit-node"
IMAGE = "sandgate-sandbox:test"
LIMITS = Limits(memory_mb=512, cpus=1.0, pids=1024)


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
    envoy: FakeEnvoy


def manager_settings(state_dir: Path, **overrides: Any) -> ManagerSettings:
    forwarder = state_dir / "bin" / "sandgate-forward"
    forwarder.parent.mkdir(parents=True, exist_ok=True)
    forwarder.write_bytes(b"#!/bin/true\n")
    values: dict[str, Any] = {
        "node_id": NODE, "state_dir": state_dir, "forwarder_binary": forwarder, "default_image": IMAGE,
        "forward_port": 3128, "default_ttl_seconds": 600, "max_ttl_seconds": 3600,
        "capacity": Capacity(max_sessions=4, total_memory_mb=4 * 512, total_cpus=4.0), "default_limits": LIMITS,
        **overrides,
    }  # fmt: skip
    return ManagerSettings(**values)


@asynccontextmanager
async def running_core(
    state_dir: Path, runtime: NoSandboxRuntime | None = None, **overrides: Any
) -> AsyncIterator[Core]:
    """The core with one fake Envoy of its node connected; closes the store afterwards."""
    settings = manager_settings(state_dir, **overrides)
    settings.sessions_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir / "sandgate.db")
    clock = Clock()
    keyring = Keyring(store, clock, settings.max_ttl_seconds)
    registry = SessionRegistry(store, clock)
    cache = SnapshotCache()
    editor: list[EgressEditor] = []
    publisher = ConfigPublisher(
        cache, EgressSettings(), lambda sid: settings.socket_dir(sid) / "proxy.sock", keyring.jwks,
        lambda: editor[0].policy(), apply_timeout=5.0,
    )  # fmt: skip
    editor.append(EgressEditor(registry, store, publisher))
    runtime = runtime if runtime is not None else NoSandboxRuntime(images={IMAGE})
    manager = SessionManager(settings, registry, runtime, publisher, keyring, editor[0].policy, clock)
    publisher.ensure_node(NODE)
    try:
        async with fake_envoy(cache, NODE, settings.sessions_dir) as envoy:
            yield Core(settings, store, clock, keyring, registry, cache, publisher, editor[0], runtime, manager, envoy)
    finally:
        store.close()


async def wait_for(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Until `condition()` holds; TimeoutError (the test fails) after `timeout` seconds. The conditions are
    plain state (a count, a file) that no event announces, so this looks every few milliseconds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
