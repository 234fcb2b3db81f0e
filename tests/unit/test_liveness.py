"""Calls on a sandbox end when the session does: a dead sandbox never leaves a call hanging."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from control_plane.errors import FailedPrecondition
from control_plane.sessions.liveness import Liveness
from control_plane.sessions.runtime import SandboxExit


async def forever(closed: list[str]) -> AsyncIterator[int]:
    try:
        yield 1
        await asyncio.Event().wait()  # like an exec whose sandbox died: no more output, no exit code
        yield 2
    finally:
        closed.append("closed")


async def test_a_stream_ends_with_the_reason_when_its_session_ends() -> None:
    liveness, closed = Liveness(), []
    received: list[int] = []
    first = asyncio.Event()

    async def consume() -> None:
        async for item in liveness.stream("s-1", forever(closed)):
            received.append(item)
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    liveness.end("s-1", "sandbox-exited: exit code 137 (OOM killed)")
    with pytest.raises(FailedPrecondition, match="OOM killed"):
        await task
    assert received == [1] and closed == ["closed"]


async def test_a_call_ends_at_its_deadline() -> None:
    liveness = Liveness()
    deadline = asyncio.get_running_loop().time() + 0.05
    with pytest.raises(TimeoutError):
        await liveness.call("s-1", asyncio.Event().wait(), deadline)


async def test_another_sessions_end_does_not_touch_a_call() -> None:
    liveness = Liveness()
    call = asyncio.create_task(liveness.call("s-1", asyncio.sleep(0.1, result="done")))
    await asyncio.sleep(0)
    liveness.end("s-2", "ended")
    assert await call == "done"


@pytest.mark.parametrize(
    ("code", "oom", "reason", "cause"),
    [
        (137, True, "sandbox-exited: exit code 137 (OOM killed)", "oom-killed"),
        (137, False, "sandbox-exited: exit code 137 (killed)", "killed"),
        (2, False, "sandbox-exited: exit code 2", "crashed"),
    ],
)
def test_an_exit_says_why(code: int, oom: bool, reason: str, cause: str) -> None:
    ended = SandboxExit("s-1", code, oom)
    assert (ended.reason, ended.cause) == (reason, cause)
