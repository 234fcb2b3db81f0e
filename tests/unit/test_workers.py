"""Thread pools fair per session: one session's backlog never holds the threads another session needs."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from control_plane.workers import FairWorkers, Workers


class Blocker:
    """Blocking calls that wait for a gate, counting how many of each session run at once."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.changed = threading.Condition(self.lock)

    def block(self, session_id: str) -> str:
        with self.lock:
            self.running[session_id] += 1
            self.most[session_id] = max(self.most[session_id], self.running[session_id])
            self.changed.notify_all()
        self.gate.wait(30)
        with self.lock:
            self.running[session_id] -= 1
        return session_id

    def wait_running(self, session_id: str, count: int) -> None:
        with self.lock:
            assert self.changed.wait_for(lambda: self.running[session_id] >= count, 10)


async def test_a_sessions_backlog_waits_in_its_own_queue_while_others_run() -> None:
    blocker = Blocker()
    fair = FairWorkers(Workers("t", 4), per_session=2)
    flood = [asyncio.create_task(fair.run("s-a", 30, blocker.block, "s-a")) for _ in range(8)]
    await asyncio.to_thread(blocker.wait_running, "s-a", 2)
    assert await fair.run("s-b", 30, lambda: "victim") == "victim"  # two threads are still free
    assert blocker.running["s-a"] == 2 and fair.busy("s-a") == 8
    blocker.gate.set()
    assert await asyncio.gather(*flood) == ["s-a"] * 8
    assert blocker.most["s-a"] == 2
    assert fair.busy("s-a") == 0


async def test_a_call_that_times_out_keeps_its_slot_until_its_thread_ends() -> None:
    blocker = Blocker()
    fair = FairWorkers(Workers("t", 4), per_session=1)
    with pytest.raises(TimeoutError):
        await fair.run("s-a", 0.05, blocker.block, "s-a")
    waiting = asyncio.create_task(fair.run("s-a", 30, lambda: "next"))
    await asyncio.sleep(0)
    assert fair.busy("s-a") == 2 and blocker.running["s-a"] == 1  # the slot is still the stuck thread's
    blocker.gate.set()
    assert await waiting == "next"


async def test_a_cancelled_caller_releases_its_place_in_the_queue() -> None:
    blocker = Blocker()
    fair = FairWorkers(Workers("t", 2), per_session=1)
    first = asyncio.create_task(fair.run("s-a", 30, blocker.block, "s-a"))
    queued = asyncio.create_task(fair.run("s-a", 30, blocker.block, "s-a"))
    await asyncio.to_thread(blocker.wait_running, "s-a", 1)
    assert fair.busy("s-a") == 2  # one running, one waiting for the session's only slot
    queued.cancel()
    blocker.gate.set()
    assert await first == "s-a"
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert fair.busy("s-a") == 0


async def test_errors_reach_the_caller() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await Workers("t", 1).run(5, fail)
