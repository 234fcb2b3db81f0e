"""A warm pool of started sandboxes with the default image and limits, claimed by CreateSession.

A pooled sandbox is started under a session id chosen in advance, with its socket directory mounted
but no listener and no token: it can reach nothing until a session claims it and Envoy ACKs that
session's listener. Claiming skips the container start (about 260 ms with runsc).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from control_plane.domain import session as sess
from control_plane.domain.session import Limits
from control_plane.errors import SandgateError
from control_plane.sessions import socket_dir
from control_plane.sessions.runtime import ContainerRuntime, ContainerSpec

log = logging.getLogger(__name__)


class WarmPool:
    """Keeps `size` sandboxes started ahead, each under a session id chosen in advance, with the spec
    `spec_for(session_id)` gives (the default image and limits). Start with `start`, end with `stop`."""

    def __init__(
        self,
        runtime: ContainerRuntime,
        size: int,
        spec_for: Callable[[str], ContainerSpec],
        forwarder: Path,
    ) -> None:
        self._runtime = runtime
        self._size = size
        self._spec_for = spec_for
        self._forwarder = forwarder
        self._ready: deque[tuple[str, str]] = deque()  # (session id, container id)
        self._starting: dict[str, asyncio.Future[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._removing: set[asyncio.Task[None]] = set()

    @property
    def available(self) -> int:
        """Started sandboxes waiting to be claimed."""
        return len(self._ready)

    def claim(self, image: str, limits: Limits, env_empty: bool) -> tuple[str, str] | None:
        """A started sandbox for a session with the pool's image and limits, or None."""
        spec = self._spec_for("probe")
        if not self._ready or not env_empty or image != spec.image or limits != spec.limits:
            return None
        claimed = self._ready.popleft()
        self._wake.set()
        return claimed

    def discard(self, session_id: str) -> bool:
        """A pooled sandbox stopped: forget it (it is never claimed), remove its remains, start another."""
        found = next((item for item in self._ready if item[0] == session_id), None)
        if found is None:
            return False
        self._ready.remove(found)
        removing = asyncio.create_task(self._remove(session_id))
        self._removing.add(removing)
        removing.add_done_callback(self._removing.discard)
        self._wake.set()
        return True

    async def _remove(self, session_id: str) -> None:
        try:
            await self._runtime.remove(session_id)
        except SandgateError as exc:  # the next start's reconcile removes what is left
            log.warning("warm pool: cannot remove the stopped sandbox %s: %s", session_id, exc)
        socket_dir.remove(self._spec_for(session_id).socket_dir)

    def start(self) -> None:
        """Begin filling the pool, in the background (nothing with size 0)."""
        if self._size > 0:
            self._task = asyncio.create_task(self._keep_full())
            self._wake.set()

    async def _keep_full(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while len(self._ready) + len(self._starting) < self._size:
                await self._add_one()

    async def _add_one(self) -> None:
        session_id = sess.new_session_id()
        spec = self._spec_for(session_id)
        socket_dir.prepare(spec.socket_dir, self._forwarder)
        # Shielded: a start in a docker thread cannot be cancelled, so `stop` waits for it and removes it.
        starting = self._starting[session_id] = asyncio.ensure_future(self._runtime.start(spec))
        try:
            container_id = await asyncio.shield(starting)
        except (SandgateError, OSError) as exc:
            del self._starting[session_id]
            socket_dir.remove(spec.socket_dir)
            log.warning("warm pool: cannot start a sandbox (%s); retrying in 5 s", exc)
            await asyncio.sleep(5)
            return
        # On cancellation the start stays in _starting, for `stop` to finish and remove.
        del self._starting[session_id]
        self._ready.append((session_id, container_id))

    async def stop(self) -> None:
        """Stop refilling and destroy the unclaimed sandboxes."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for session_id, starting in list(self._starting.items()):
            with contextlib.suppress(Exception):
                self._ready.append((session_id, await starting))
        while self._ready:
            session_id, _ = self._ready.popleft()
            await self._remove(session_id)
        for removing in list(self._removing):
            await removing
