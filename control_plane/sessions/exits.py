"""A sandbox that dies fails its session within a moment: FAILED with the reason, calls in flight end.

Without this a session whose sandbox was killed (fork bomb, OOM, `kill`) read READY forever, its
Execs hung or answered INTERNAL. The runtime reports each death; here the session becomes FAILED
with a reason a person can act on, the Execs, ReadFiles and WriteFiles in flight answer
FAILED_PRECONDITION with it, and the death is recorded (decision log and metric, by `on_exit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from control_plane.domain.session import Session, State
from control_plane.errors import SandgateError
from control_plane.sessions.liveness import Liveness
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerRuntime, SandboxExit

log = logging.getLogger(__name__)
RETRY_S = 2.0


class ExitWatch:
    def __init__(
        self,
        runtime: ContainerRuntime,
        registry: SessionRegistry,
        liveness: Liveness,
        pool: WarmPool | None,
        on_exit: Callable[[Session, SandboxExit], None],
    ) -> None:
        self._runtime = runtime
        self._registry = registry
        self._liveness = liveness
        self._pool = pool
        self._on_exit = on_exit

    async def run(self, node_id: str) -> None:
        """Follow the runtime's exits for `node_id` until cancelled; start again if the runtime fails."""
        while True:
            try:
                async for ended in self._runtime.exits(node_id):
                    await self.handle(ended)
            except SandgateError as exc:
                log.warning("watching sandboxes: %s; again in %g s", exc, RETRY_S)
            await asyncio.sleep(RETRY_S)

    async def handle(self, ended: SandboxExit) -> None:
        """One sandbox stopped. Only a READY session fails: one that is ending already removed it."""
        pool = self._pool
        if pool is not None and pool.discard(ended.session_id):
            log.warning("warm pool: sandbox %s stopped (%s)", ended.session_id, ended.reason)
            return
        session = self._registry.find(ended.session_id)
        if session is None or session.state != State.READY:
            return
        failed = await self._registry.save(replace(session, state=State.FAILED, failure_reason=ended.reason))
        self._liveness.end(session.id, f"session {session.id} is FAILED ({ended.reason})")
        log.warning("session %s failed: %s", session.id, ended.reason)
        self._on_exit(failed, ended)
