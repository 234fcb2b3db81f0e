"""Egress decisions: stored with bounded retention, queryable, counted, and followed live."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Protocol

from control_plane.metrics import Counter


@dataclass(frozen=True)
class DecisionEvent:
    id: int
    time: float
    session_id: str
    method: str
    host: str
    port: int
    verdict: str  # allow, deny, would_deny
    reason: str
    response_code: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms: float = 0.0
    source: str = "envoy"
    stream_id: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class DecisionStore(Protocol):
    def add_decisions(self, events: list[DecisionEvent], keep: int) -> list[int]: ...
    def complete_decision(self, stream_id: str, bytes_sent: int, bytes_received: int, duration_ms: float) -> None: ...
    def decisions(self, session_id: str, verdict: str, limit: int) -> list[DecisionEvent]: ...


class DecisionLog:
    def __init__(
        self,
        store: DecisionStore,
        retention: int,
        counter: Counter | None = None,
        on_activity: Callable[[str, float], None] | None = None,
    ) -> None:
        self._on_activity = on_activity
        self._store = store
        self._retention = retention
        self._followers: set[asyncio.Queue[DecisionEvent]] = set()
        self._counter = counter

    def record_many(self, events: Iterable[DecisionEvent]) -> None:
        batch = list(events)
        if not batch:
            return
        ids = self._store.add_decisions(batch, self._retention)
        for event, event_id in zip(batch, ids, strict=True):
            stored = dataclasses.replace(event, id=event_id)
            if self._counter:
                self._counter.inc(verdict=stored.verdict, reason=stored.reason)
            if self._on_activity:
                self._on_activity(stored.session_id, stored.time)
            for queue in self._followers:
                if queue.qsize() < 1000:  # a slow follower loses events rather than growing without bound
                    queue.put_nowait(stored)

    def complete_tunnel(self, stream_id: str, bytes_sent: int, bytes_received: int, duration_ms: float) -> None:
        """A tunnel's decision was recorded when it opened; its totals arrive when it closes."""
        self._store.complete_decision(stream_id, bytes_sent, bytes_received, duration_ms)

    def query(self, session_id: str = "", verdict: str = "", limit: int = 100) -> list[DecisionEvent]:
        return self._store.decisions(session_id, verdict, limit)

    async def follow(self) -> AsyncIterator[DecisionEvent]:
        queue: asyncio.Queue[DecisionEvent] = asyncio.Queue()
        self._followers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)
