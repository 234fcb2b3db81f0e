"""Calls in flight against a session's sandbox, and what ends them early.

When a sandbox dies (fork bomb, OOM, kill), runsc leaves a running `docker exec` hanging: its
output never ends and its exit code never comes. So every Exec, ReadFile and WriteFile waits on its
work and on the session's end at once; when the session ends or its sandbox dies, the call answers
FAILED_PRECONDITION with the reason at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, TypeVar

from control_plane.errors import FailedPrecondition

T = TypeVar("T")


class Liveness:
    def __init__(self) -> None:
        self._ends: dict[str, asyncio.Future[str]] = {}

    def end(self, session_id: str, reason: str) -> None:
        """The session's sandbox is gone, for `reason`: the calls in flight fail with it."""
        ended = self._ends.pop(session_id, None)
        if ended is not None and not ended.done():
            ended.set_result(reason)

    async def call(self, session_id: str, work: Awaitable[T], deadline: float | None = None) -> T:
        """`work`'s result; FailedPrecondition if the session ends first, TimeoutError once the loop's
        clock passes `deadline`. The work is cancelled either way."""
        ended = self._end_of(session_id)
        task = asyncio.ensure_future(work)
        waiting: set[asyncio.Future[Any]] = {task, ended}
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():  # the session ended, time ran out, or our caller went away
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if task.cancelled():
            if ended.done():
                raise FailedPrecondition(ended.result())
            raise TimeoutError
        return task.result()

    async def stream(
        self, session_id: str, items: AsyncIterator[T], deadline: float | None = None
    ) -> AsyncGenerator[T, None]:
        """`items`, until they end, the session does (FailedPrecondition) or `deadline` passes (TimeoutError)."""
        async with contextlib.aclosing(_closable(items)) as source:
            while True:
                try:
                    item = await self.call(session_id, anext(source), deadline)
                except StopAsyncIteration:
                    return
                yield item

    def _end_of(self, session_id: str) -> asyncio.Future[str]:
        if session_id not in self._ends:
            self._ends[session_id] = asyncio.get_running_loop().create_future()
        return self._ends[session_id]


async def _closable(items: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    async for item in items:
        yield item
