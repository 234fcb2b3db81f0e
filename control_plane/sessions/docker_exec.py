"""docker exec, streamed on the event loop: a running Exec holds no thread.

Only the short SDK calls (create, start, inspect) run on the session's workers; the hijacked
connection that carries stdin and the framed stdout/stderr is read and written with asyncio. An Exec
that runs for hours therefore costs one socket, not one of the threads every session shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

from control_plane.errors import Unavailable
from control_plane.sessions.runtime import SANDBOX_USER, ExecChunk

log = logging.getLogger(__name__)
EXEC_ATTEMPTS = 3
EXIT_CODE_POLLS = 20
OCI_EXEC_FAILED = b"OCI runtime exec failed"  # docker's words when runsc could not start an exec
Call = Callable[..., Awaitable[Any]]  # runs a blocking SDK call (fn, *args) on the session's workers


async def attach(
    call: Call, api: Any, container: str, command: list[str], env: Mapping[str, str], stdin: bytes
) -> AsyncGenerator[ExecChunk, None]:
    """docker exec, streamed. An exec that runsc failed to start (docker's "OCI runtime exec failed",
    exit 126, no process ever had a pid) is tried again: it happens now and then under churn, and
    nothing ran, so nothing runs twice."""
    for attempt in range(1, EXEC_ATTEMPTS + 1):
        exec_id = await call(_create, api, container, command, dict(env))
        held: ExecChunk | None = None  # a first chunk that may be docker's "did not start" message
        first = True
        async with contextlib.aclosing(_output(call, api, exec_id, stdin)) as output:  # closed if we are left early
            async for chunk in output:
                if first and chunk.data.startswith(OCI_EXEC_FAILED):
                    held, first = chunk, False
                    continue
                first = False
                if held is not None:  # more output: the program did run, and said so
                    yield held
                    held = None
                yield chunk
        info = await _ended(call, api, exec_id)
        code = int(info["ExitCode"])
        if held is None or code != 126 or info.get("Pid") or attempt == EXEC_ATTEMPTS:
            if held is not None:
                _refuse_if_never_started(held, code, info, container)
                yield held
            yield ExecChunk(exit_code=code)
            return
        log.warning("exec in %s did not start (%r); trying again", container, held.data[:200])
        await asyncio.sleep(0.2 * attempt)


async def _ended(call: Call, api: Any, exec_id: str) -> dict[str, Any]:
    """The exec's final state; docker may record the exit code a moment after the output ends."""
    for _ in range(EXIT_CODE_POLLS):
        info: dict[str, Any] = await call(api.exec_inspect, exec_id)
        if info.get("ExitCode") is not None:
            return info
        await asyncio.sleep(0.1)
    raise Unavailable("the connection to the sandbox closed before the command ended")


def _create(api: Any, container: str, command: list[str], env: dict[str, str]) -> str:
    created = api.exec_create(container, command, stdin=True, environment=env, user=SANDBOX_USER, workdir="/tmp")
    return str(created["Id"])


def _start(api: Any, exec_id: str, tty: bool = False) -> tuple[Any, socket.socket, bytes]:
    """Start the exec: the SDK's handle (kept while the stream runs: it owns the connection), its
    socket, and any output that the HTTP parser already read past the headers."""
    raw = api.exec_start(exec_id, tty=tty, socket=True)
    sock: socket.socket = raw._sock
    sock.setblocking(False)
    early = b""
    with contextlib.suppress(AttributeError, OSError):
        buffered = raw._response.raw._fp.fp  # the reader that parsed the 101 response
        early = buffered.peek() or b""  # what it holds (or reads without blocking), not consumed yet
        buffered.read(len(early))
    return raw, sock, early


async def _output(call: Call, api: Any, exec_id: str, stdin: bytes) -> AsyncGenerator[ExecChunk, None]:
    """Stream an exec's output until it ends; a consumer that leaves early closes the connection."""
    handle, sock, early = await call(_start, api, exec_id)
    reader, writer = await asyncio.open_connection(sock=sock)
    feeding = asyncio.create_task(_feed(writer, stdin))  # concurrently: a program may talk before it reads
    frames = _Frames(reader, early)
    try:
        while header := await frames.read(8):
            kind, size = struct.unpack(">BxxxL", header)
            data = await frames.read(size)
            yield ExecChunk(stream="stderr" if kind == 2 else "stdout", data=data)
    finally:
        feeding.cancel()
        writer.close()
        del handle
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await feeding


async def _feed(writer: asyncio.StreamWriter, stdin: bytes) -> None:
    with contextlib.suppress(OSError):
        if stdin:
            writer.write(stdin)
            await writer.drain()
        writer.write_eof()


class _Frames:
    """Exact reads from the connection, after the bytes the HTTP parser had read ahead."""

    def __init__(self, reader: asyncio.StreamReader, early: bytes) -> None:
        self._reader = reader
        self._early = bytearray(early)

    async def read(self, size: int) -> bytes:
        """`size` bytes, or b"" at the end of the stream."""
        head = bytes(self._early[:size])
        del self._early[:size]
        try:
            return head + await self._reader.readexactly(size - len(head))
        except (asyncio.IncompleteReadError, OSError):
            return b""


def _refuse_if_never_started(held: ExecChunk, code: int, info: dict[str, Any], container: str) -> None:
    """After the last try nothing ran: docker's message names runsc's internals, so it goes to the log only."""
    if code == 126 and not info.get("Pid"):
        log.error("exec in %s did not start after %d tries: %r", container, EXEC_ATTEMPTS, held.data[:500])
        raise Unavailable(
            f"the container runtime could not start the command in {container} ({EXEC_ATTEMPTS} tries). "
            "Try again; if it repeats, an operator finds the reason in the control plane log"
        )
