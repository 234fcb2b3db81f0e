"""The sync client's engine: one event loop on a daemon thread per client, which runs the async client.

One implementation (the async one) serves both forms, so they cannot drift apart; grpc.aio and
aiohttp sockets stay on that loop, and the caller's thread only waits for results.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")


class Portal:
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandgate-sdk", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the client's loop and wait for its result (or its exception)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a sync Sandgate call from inside its own loop; use AsyncSandgate there")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def iterate(self, items: AsyncIterator[T]) -> Generator[T, None, None]:
        """`items`, one at a time, on the caller's thread; leaving early closes them on the loop."""
        try:
            while True:
                try:
                    yield self.run(_next(items))
                except StopAsyncIteration:
                    return
        finally:  # also when collected: perhaps after the client closed, when there is nothing left to close
            if (aclose := getattr(items, "aclose", None)) and not self._loop.is_closed():
                self.run(aclose())

    def close(self) -> None:
        """Stop the loop and its thread (after the client closed its connections)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _next(items: AsyncIterator[T]) -> T:
    step: Awaitable[T] = anext(items)
    return await step
