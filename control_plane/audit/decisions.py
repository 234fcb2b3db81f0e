"""Egress decisions: a bounded log that can be queried and followed live."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

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
    source: str = "ext_authz"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class DecisionLog:
    def __init__(self, capacity: int, counter: Counter | None = None) -> None:
        self._events: deque[DecisionEvent] = deque(maxlen=capacity)
        self._ids = itertools.count(1)
        self._followers: set[asyncio.Queue[DecisionEvent]] = set()
        self._counter = counter

    def next_id(self) -> int:
        return next(self._ids)

    def record(self, event: DecisionEvent) -> None:
        self._events.append(event)
        if self._counter:
            self._counter.inc(verdict=event.verdict, reason=event.reason)
        for queue in self._followers:
            if queue.qsize() < 1000:  # a slow follower loses events rather than growing without bound
                queue.put_nowait(event)

    def query(self, session_id: str = "", verdict: str = "", limit: int = 100) -> list[DecisionEvent]:
        found = [
            e
            for e in reversed(self._events)
            if (not session_id or e.session_id == session_id) and (not verdict or e.verdict == verdict)
        ]
        return found[:limit]

    async def follow(self) -> AsyncIterator[DecisionEvent]:
        queue: asyncio.Queue[DecisionEvent] = asyncio.Queue()
        self._followers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._followers.discard(queue)
