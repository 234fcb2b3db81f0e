"""Egress decisions: stored with bounded retention, queryable, counted, and followed live."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from control_plane.audit.events import DecisionEvent
from control_plane.envoy_contract import ACCESS_LOG_FLUSH_SECONDS
from control_plane.errors import Unavailable
from control_plane.metrics import AuditMetrics
from control_plane.workers import Workers

# Envoy sends access logs in batches, at the latest ACCESS_LOG_FLUSH_SECONDS after a request finishes.
# A query waits that long plus this margin, so a request that finished before it was asked is in its answer.
_DELIVERY_MARGIN_SECONDS = 0.1
QUERY_TIMEOUT_SECONDS = 30.0  # waiting for the journal's writer, then reading
SANDBOX_EXITED = "event"  # the verdict of a lifecycle event in the decision log (not an egress decision)
FOLLOWER_BACKLOG = 1000  # events a follower may have unread; beyond it, it loses the newest


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
        metrics: AuditMetrics | None = None,
        settle_seconds: float = ACCESS_LOG_FLUSH_SECONDS + _DELIVERY_MARGIN_SECONDS,
    ) -> None:
        self._settle_seconds = settle_seconds
        self._store = store
        self._workers = workers
        self._followers: set[asyncio.Queue[DecisionEvent]] = set()
        self._metrics = metrics

    def record_many(self, events: Iterable[DecisionEvent]) -> None:
        """Store `events` (ids assigned here), count them by verdict and reason, and pass them to followers."""
        batch = list(events)
        if not batch:
            return
        first_id = self._store.append(batch)
        if self._metrics:
            self._count(self._metrics, batch)
        if self._followers:
            self._tell_followers([dataclasses.replace(e, id=first_id + i) for i, e in enumerate(batch)])

    def _count(self, metrics: AuditMetrics, batch: list[DecisionEvent]) -> None:
        """Per batch, not per event: this runs for every request a sandbox makes. The lag observed is
        the batch's oldest request's, from its end in Envoy until now."""
        for (verdict, reason), count in Counter((e.verdict, e.reason) for e in batch).items():
            metrics.decisions.labels(verdict, reason).inc(count)  # positional: a third of the keyword form's cost
        ends = [e.time + e.duration_ms / 1000 for e in batch if e.source == "envoy"]
        if ends:
            metrics.lag_seconds.observe(max(0.0, time.time() - min(ends)))

    def _tell_followers(self, stored: list[DecisionEvent]) -> None:
        lost = 0
        for queue in self._followers:
            room = max(0, FOLLOWER_BACKLOG - queue.qsize())  # a slow follower loses events rather than grow
            for event in stored[:room]:
                queue.put_nowait(event)
            lost += len(stored) - min(room, len(stored))
        if lost:
            self.lost("slow-follower", lost)

    def lost(self, reason: str, count: int = 1) -> None:
        """Count decision entries that were not kept (`reason`: write-failed, unreadable-message, slow-follower)."""
        if self._metrics:
            self._metrics.lost.labels(reason=reason).inc(count)

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
        """Every decision as it is recorded, until the caller stops reading."""
        queue: asyncio.Queue[DecisionEvent] = asyncio.Queue()
        self._followers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)
