"""An Envoy stand-in for the unit tier: it watches the snapshot cache as an ADS stream would and ACKs
(or NACKs) what it is given; for each session listener it ACKs it creates the listener's socket path as
an empty file, which is what the session manager waits for. No sockets, no process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from control_plane.envoy_contract import SESSION_PREFIX, SOCKET_NAME
from control_plane.xds.cache import Key, SnapshotCache, StreamView
from control_plane.xds.types import LISTENER


class FakeEnvoy:
    """One connected "Envoy" of `node_id`. `reject(key)` decides which resources it NACKs; `paused`
    holds every answer (an Envoy that is connected but stopped); without `open_sockets` it ACKs listeners
    but opens no socket."""

    def __init__(self, cache: SnapshotCache, node_id: str, sessions_dir: Path) -> None:
        self._cache = cache
        self._sessions_dir = sessions_dir
        self.stream = StreamView(node_id)
        self.reject: Callable[[Key], bool] = lambda key: False
        self.paused = False
        self.open_sockets = True
        self._resume = asyncio.Event()

    def resume(self) -> None:
        self.paused = False
        self.open_sockets = True
        self._resume.set()

    async def run(self) -> None:
        """Answer every change of the node's snapshot until cancelled."""
        while True:
            await self.stream.wakeup.wait()
            self.stream.wakeup.clear()
            while self.paused:
                self._resume.clear()
                await self._resume.wait()
            await self._apply()

    async def _apply(self) -> None:
        snapshot = self._cache.snapshot(self.stream.node_id)
        held = {(t, n): r.version for t, rs in snapshot.resources.items() for n, r in rs.items()}
        for key in [k for k in self.stream.acked if k not in held]:
            del self.stream.acked[key]
        for key, version in held.items():
            if self.stream.acked.get(key) == version:
                continue
            if self.reject(key):
                self.stream.nacked[key] = (version, "rejected by the fake Envoy")
                continue
            self.stream.acked[key] = version
            self._open_listener(key)
        await self._cache.report()

    def _open_listener(self, key: Key) -> None:
        type_url, name = key
        directory = self._sessions_dir / name.removeprefix(SESSION_PREFIX)
        if self.open_sockets and type_url == LISTENER and name.startswith(SESSION_PREFIX) and directory.is_dir():
            (directory / SOCKET_NAME).touch()


@asynccontextmanager
async def fake_envoy(cache: SnapshotCache, node_id: str, sessions_dir: Path) -> AsyncIterator[FakeEnvoy]:
    """A FakeEnvoy attached to `cache` for the duration of the block."""
    envoy = FakeEnvoy(cache, node_id, sessions_dir)
    await cache.attach(envoy.stream)
    envoy.stream.wakeup.set()  # answer what the snapshot already holds
    task = asyncio.create_task(envoy.run())
    try:
        yield envoy
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cache.detach(envoy.stream)
