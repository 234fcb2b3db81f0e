"""Sandboxes that stop: docker's event stream for one node's containers, followed in a thread of its own.

A fork bomb, a memory bomb (the cgroup's OOM killer) or a `kill` ends a sandbox's runsc processes
while the session still reads READY, and runsc leaves a running `docker exec` hanging. docker's
`die` event says so at once; this turns each into a SandboxExit. The stream is long-lived, so it
runs on its own thread, not on a pool; it reconnects after errors and replays what it missed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import docker.errors
import requests

from control_plane.sessions.runtime import NODE_LABEL, SESSION_LABEL, SandboxExit

log = logging.getLogger(__name__)
RECONNECT_S = 1.0
_ERRORS = (docker.errors.DockerException, requests.RequestException, OSError, ValueError)


async def follow_exits(client: Callable[[], Any], node_id: str) -> AsyncIterator[SandboxExit]:
    """Every container of `node_id` that dies, until the consumer stops iterating."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[SandboxExit] = asyncio.Queue()
    follower = _Follower(client, node_id, lambda ex: loop.call_soon_threadsafe(queue.put_nowait, ex))
    thread = threading.Thread(target=follower.run, name=f"docker-events-{node_id}", daemon=True)
    thread.start()
    try:
        while True:
            yield await queue.get()
    finally:
        follower.stop()


class _Follower:
    def __init__(self, client: Callable[[], Any], node_id: str, emit: Callable[[SandboxExit], object]) -> None:
        self._client = client
        self._filters = {"label": f"{NODE_LABEL}={node_id}", "type": "container", "event": ["die", "oom"]}
        self._emit = emit
        self._stopping = threading.Event()
        self._stream: Any = None
        self._oom: set[str] = set()  # containers whose OOM event came before their death

    def run(self) -> None:
        since = time.time()
        while not self._stopping.is_set():
            try:
                since = self._follow(since)
            except _ERRORS as exc:
                if not self._stopping.is_set():
                    log.warning("docker events: %s; reconnecting in %g s", exc, RECONNECT_S)
            self._stopping.wait(RECONNECT_S)

    def stop(self) -> None:
        self._stopping.set()
        if self._stream is not None:
            self._stream.close()  # ends the blocking read in run()

    def _follow(self, since: float) -> float:
        """Read events from `since` on (docker replays the ones we missed); returns when the time we are at."""
        self._stream = self._client().events(decode=True, since=int(since), filters=self._filters)
        for event in self._stream:
            since = max(since, float(event.get("time", since)))
            self._handle(event)
        return since

    def _handle(self, event: dict[str, Any]) -> None:
        actor = event.get("Actor", {})
        attributes, container = actor.get("Attributes", {}), actor.get("ID", "")
        session_id = attributes.get(SESSION_LABEL, "")
        if event.get("Action") == "oom":
            self._oom.add(container)
        elif event.get("Action") == "die" and session_id:
            oom = container in self._oom or self._oom_killed(container)
            self._oom.discard(container)
            self._emit(SandboxExit(session_id, int(attributes.get("exitCode", -1)), oom))

    def _oom_killed(self, container: str) -> bool:
        try:
            return bool(self._client().api.inspect_container(container)["State"].get("OOMKilled"))
        except _ERRORS:  # removed already (a session that ended): no matter
            return False
