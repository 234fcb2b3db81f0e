"""Egress decisions: stored with bounded retention, queryable, counted, and followed live."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from typing import Protocol

from control_plane import metrics
from control_plane.errors import Unavailable
from control_plane.workers import Workers
from control_plane.xds.builders.shared import ACCESS_LOG_FLUSH_SECONDS

# Envoy sends access logs in batches, at the latest ACCESS_LOG_FLUSH_SECONDS after a request finishes.
# A query waits that long plus this margin, so a request that finished before it was asked is in its answer.
_DELIVERY_MARGIN_SECONDS = 0.1
QUERY_TIMEOUT_SECONDS = 30.0  # waiting for the journal's writer, then reading
SANDBOX_EXITED = "event"  # the verdict of a lifecycle event in the decision log (not an egress decision)


@dataclass(frozen=True)
class DecisionEvent:
    id: int
    time: float
    session_id: str
    method: str
    host: str
    port: int
    verdict: str  # allow, deny, would_deny, error (allowed, but Envoy could not reach the upstream)
    reason: str
    response_code: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms: float = 0.0
    source: str = "envoy"
    stream_id: str = ""
    path: str = ""  # the request's path without its query (none for a tunnel)
    credential: str = ""  # the name of the secret Envoy injected, never its value

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class DecisionStore(Protocol):
    def append(self, events: list[DecisionEvent]) -> int: ...
    def complete(self, closed: DecisionEvent) -> None: ...
    def query(self, session_id: str, verdict: str, limit: int) -> list[DecisionEvent]: ...
    def flush(self, timeout: float = 5.0) -> bool: ...


def sandbox_exit_event(session_id: str, cause: str, when: float) -> DecisionEvent:
    """The decision log's record that a session's sandbox died; `cause` is oom-killed, killed or crashed."""
    return DecisionEvent(id=0, time=when, session_id=session_id, method="", host="", port=0,
                         verdict=SANDBOX_EXITED, reason=f"sandbox-{cause}", source="sandgate")  # fmt: skip


class DecisionLog:
    """Queries run on their own `workers`: no session's backlog of blocking calls delays them."""

    def __init__(
        self,
        store: DecisionStore,
        workers: Workers,
        counter: metrics.Counter | None = None,
        settle_seconds: float = ACCESS_LOG_FLUSH_SECONDS + _DELIVERY_MARGIN_SECONDS,
    ) -> None:
        self._settle_seconds = settle_seconds
        self._store = store
        self._workers = workers
        self._followers: set[asyncio.Queue[DecisionEvent]] = set()
        self._counter = counter

    def record_many(self, events: Iterable[DecisionEvent]) -> None:
        batch = list(events)
        if not batch:
            return
        first_id = self._store.append(batch)
        # Per batch, not per event: this runs for every request a sandbox makes.
        if self._counter:
            for (verdict, reason), count in Counter((e.verdict, e.reason) for e in batch).items():
                self._counter.inc(count, verdict=verdict, reason=reason)
        if self._followers:
            stored = [dataclasses.replace(e, id=first_id + i) for i, e in enumerate(batch)]
            for queue in self._followers:
                for event in stored:
                    if queue.qsize() < 1000:  # a slow follower loses events rather than growing without bound
                        queue.put_nowait(event)

    def complete_tunnel(self, closed: DecisionEvent) -> None:
        """A tunnel's decision was recorded when it opened; its totals arrive when it closes."""
        self._store.complete(closed)

    async def query(self, session_id: str = "", verdict: str = "", limit: int = 100) -> list[DecisionEvent]:
        """The newest decisions, including every request that had finished when the query was asked."""
        await asyncio.sleep(self._settle_seconds)  # Envoy's last batch arrives
        try:
            await self._workers.run(QUERY_TIMEOUT_SECONDS, self._store.flush, 5.0)  # and is on disk
            return await self._workers.run(QUERY_TIMEOUT_SECONDS, self._store.query, session_id, verdict, limit)
        except TimeoutError as exc:
            raise Unavailable(f"the decision log did not answer within {QUERY_TIMEOUT_SECONDS:g} s") from exc

    async def follow(self) -> AsyncIterator[DecisionEvent]:
        queue: asyncio.Queue[DecisionEvent] = asyncio.Queue()
        self._followers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)
