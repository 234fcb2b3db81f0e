"""Bounded thread pools for blocking calls (docker SDK, SQLite queries), fair per session.

`asyncio.to_thread` shares one small executor (6 threads on 2 cores): a few long docker calls from
one session filled it, and every other session's calls, CreateSession and the decisions query
waited behind them. Here each kind of work has its own executor, and a session's calls pass that
session's own semaphore first: one session holds at most `per_session` threads, its backlog waits in
its own queue, and the other sessions' calls find free threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Workers:
    """One executor of `threads` threads; every call has a deadline."""

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name)

    async def run(self, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on one of the threads. TimeoutError once `timeout` seconds pass: the caller is
        released, the thread finishes on its own (every blocking call it makes has its own timeout)."""
        return await _bounded(self.submit(fn, *args), timeout)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        context = contextvars.copy_context()  # as asyncio.to_thread does: log and trace context follow
        return self._executor.submit(context.run, functools.partial(fn, *args))

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class FairWorkers:
    """Calls made on a session's behalf: at most `per_session` of one session's calls hold a thread
    at a time (running or queued in the executor); the rest wait in that session's own queue."""

    def __init__(self, workers: Workers, per_session: int) -> None:
        self.workers = workers
        self._per_session = per_session
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._holders: dict[str, int] = {}  # slots taken or awaited, per session: drop the semaphore at 0

    async def run(self, session_id: str, timeout: float, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` for `session_id`; waits for one of its slots first (not counted in `timeout`)."""
        slot = self._slots.setdefault(session_id, asyncio.Semaphore(self._per_session))
        self._holders[session_id] = self._holders.get(session_id, 0) + 1
        try:
            await slot.acquire()
        except BaseException:
            self._drop(session_id)
            raise
        loop = asyncio.get_running_loop()
        try:
            future = self.workers.submit(fn, *args)
        except BaseException:  # shut down
            self._release(session_id, slot)
            raise
        # The slot is free when the thread is, not when the caller stops waiting for it.
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(self._release, session_id, slot))
        return await _bounded(future, timeout)

    def busy(self, session_id: str) -> int:
        """How many of this session's calls hold or wait for a slot."""
        return self._holders.get(session_id, 0)

    def _release(self, session_id: str, slot: asyncio.Semaphore) -> None:
        slot.release()
        self._drop(session_id)

    def _drop(self, session_id: str) -> None:
        self._holders[session_id] -= 1
        if not self._holders[session_id]:
            del self._holders[session_id]
            del self._slots[session_id]


async def _bounded(future: Future[T], timeout: float) -> T:
    waiting = asyncio.wrap_future(future)
    try:
        return await asyncio.wait_for(asyncio.shield(waiting), timeout)
    except asyncio.CancelledError:
        future.cancel()  # not started yet: it never will be; running: it finishes on its own
        raise
