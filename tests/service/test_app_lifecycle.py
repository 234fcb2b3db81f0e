"""App.stop after a start that failed part way: whatever had started is stopped (servers, the managed Envoy,
the thread pools) and what was opened is closed, and a second stop does nothing."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.app import App
from control_plane.config import Settings
from control_plane.errors import FailedPrecondition
from control_plane.sessions.runtime import ContainerSpec
from tests.support.no_sandbox import NoSandboxRuntime


@pytest.fixture()
def state_dir() -> Iterator[Path]:
    """A short path: a session's socket path must fit in 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="sg-app-") as tmp:
        yield Path(tmp) / "state"


def settings(state_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "state_dir": state_dir, "grpc_addr": "127.0.0.1:0", "admin_addr": "127.0.0.1:0", "node_id": "app-test",
        "api_token": "t", "admin_token": "t", "warm_pool_size": 0, **overrides,
    }  # fmt: skip
    return Settings(**values)  # type: ignore[arg-type]


async def test_stop_before_start_does_nothing(state_dir: Path) -> None:
    app = App(settings(state_dir), runtime=NoSandboxRuntime())
    await app.stop()
    assert not state_dir.exists()  # constructing and stopping touched nothing


async def test_a_start_that_fails_before_wiring_is_stopped_cleanly(state_dir: Path) -> None:
    app = App(settings(state_dir, forwarder_binary=state_dir.parent / "missing"), runtime=NoSandboxRuntime())
    with pytest.raises(FailedPrecondition, match="forwarder"):
        await app.start()
    await app.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = app.parts


async def test_a_start_that_fails_at_the_admin_port_stops_envoy_and_the_servers(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = App(settings(state_dir, admin_addr=f"127.0.0.1:{port}"), runtime=NoSandboxRuntime())
        with pytest.raises(OSError):
            await app.start()
    assert app.envoy is not None and app.ports.grpc  # it got as far as Envoy and the sessions API
    envoy_pid = app.envoy.pid
    assert envoy_pid is not None
    await app.stop()
    await app.stop()
    assert app.envoy is None and not (state_dir / "envoy.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(envoy_pid, 0)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", app.ports.grpc)) != 0  # the sessions API no longer listens


async def test_a_step_that_fails_while_stopping_does_not_keep_envoy_running(state_dir: Path) -> None:
    called = asyncio.Event()

    async def broken(spec: ContainerSpec) -> None:
        called.set()
        raise RuntimeError("a bug in the runtime")  # not an expected failure: the pool's task ends with it

    app = App(settings(state_dir, warm_pool_size=1), runtime=NoSandboxRuntime(on_start=broken))
    try:
        await app.start()
        await called.wait()  # the pool's task raised in the same step that set it
    finally:
        assert app.envoy is not None and app.envoy.pid is not None
        envoy_pid = app.envoy.pid
        await app.stop()
    assert app.envoy is None
    with pytest.raises(ProcessLookupError):
        os.kill(envoy_pid, 0)
