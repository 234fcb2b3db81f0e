"""An interactive docker exec: stdin streamed as it comes, an optional PTY with resize, signals.

The hijacked connection carries stdin one way and output the other, as in `docker_exec`; on a PTY
the output is the terminal's raw bytes (docker does not frame it). Resizes go to docker's exec
resize; signals go through the forwarder (`signal`), which knows the run's process group. Inputs are
applied by a task beside the output loop, so a command that never reads still gets its signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from control_plane.sessions.docker_exec import OCI_EXEC_FAILED, Call, _ended, _Frames, _refuse_if_never_started, _start
from control_plane.sessions.runtime import (
    FORWARDER,
    SANDBOX_USER,
    ExecChunk,
    ExecInput,
    InteractiveCommand,
    TerminalSize,
)

log = logging.getLogger(__name__)
OUTPUT_CHUNK = 65536
SIGNAL_ATTEMPTS, SIGNAL_RETRY_S = 20, 0.05  # a signal sent as the run starts waits for its group id file
NO_SUCH_RUN = 1  # the forwarder's `signal` exit code: no group id file (not started yet, or ended)
DEFAULT_TERM = "xterm-256color"
Signal = Callable[[int], Awaitable[None]]  # delivers a signal number to the run's process group


async def attach_interactive(
    call: Call,
    api: Any,
    container: str,
    command: list[str],
    env: Mapping[str, str],
    pty: TerminalSize | None,
    inputs: AsyncIterator[ExecInput],
    send_signal: Signal,
) -> AsyncGenerator[ExecChunk, None]:
    """Run `command` in `container`, apply `inputs` while it runs, stream its output, then its exit code."""
    exec_id = await call(_create, api, container, command, dict(env), pty is not None)
    handle, sock, early = await call(_start, api, exec_id, pty is not None)
    reader, writer = await asyncio.open_connection(sock=sock)
    applying = asyncio.create_task(_apply(inputs, writer, _Resizer(call, api, exec_id), send_signal, pty is None))
    applying.add_done_callback(lambda task: _end_if_failed(task, writer))
    output = _FirstChunkHeld(_raw(reader, early) if pty is not None else _framed(reader, early))
    try:
        async with contextlib.aclosing(output.chunks()) as chunks:
            async for chunk in chunks:
                yield chunk
        if applying.done() and not applying.cancelled() and (failed := applying.exception()):
            raise failed
    finally:
        applying.cancel()
        writer.close()
        del handle
        with contextlib.suppress(asyncio.CancelledError, Exception):  # its failure, if any, was raised above
            await applying
    info = await _ended(call, api, exec_id)
    code = int(info["ExitCode"])
    if output.held is not None:
        _refuse_if_never_started(output.held, code, info, container)  # not tried again: stdin may have been used
        yield output.held
    yield ExecChunk(exit_code=code)


class _FirstChunkHeld:
    """The output, except a first chunk that is docker's "did not start" message: that one is `held`
    until the exit code says whether the program ran (more output also says it did)."""

    def __init__(self, output: AsyncGenerator[ExecChunk, None]) -> None:
        self._output = output
        self.held: ExecChunk | None = None

    async def chunks(self) -> AsyncGenerator[ExecChunk, None]:
        first = True
        async with contextlib.aclosing(self._output):
            async for chunk in self._output:
                if first and chunk.data.startswith(OCI_EXEC_FAILED):
                    self.held, first = chunk, False
                    continue
                first = False
                if self.held is not None:
                    yield self.held
                    self.held = None
                yield chunk


def terminal_env(command: InteractiveCommand) -> dict[str, str]:
    """What a PTY adds to the environment: TERM unless given, and the size the forwarder sets first."""
    if command.pty is None:
        return {}
    term = {} if "TERM" in command.env else {"TERM": DEFAULT_TERM}
    return {**term, "SANDGATE_TTY_SIZE": f"{command.pty.rows}x{command.pty.cols}"}


async def signal_run(collect: Callable[[list[str]], Awaitable[ExecChunk]], run_id: str, signum: int) -> None:
    """Send `signum` to run `run_id`'s process group through the forwarder (`collect` runs a helper
    command). A signal sent as the command starts waits, briefly, for the run to record its group."""
    for _ in range(SIGNAL_ATTEMPTS):
        result = await collect([FORWARDER, "signal", run_id, str(signum)])
        if result.exit_code != NO_SUCH_RUN:
            return
        await asyncio.sleep(SIGNAL_RETRY_S)
    log.info("signal %d for run %s: no such run (it ended, or never started)", signum, run_id)


def _create(api: Any, container: str, command: list[str], env: dict[str, str], tty: bool) -> str:
    created = api.exec_create(
        container, command, stdin=True, tty=tty, environment=env, user=SANDBOX_USER, workdir="/tmp"
    )
    return str(created["Id"])


class _Resizer:
    def __init__(self, call: Call, api: Any, exec_id: str) -> None:
        self._call, self._api, self._exec_id = call, api, exec_id

    async def __call__(self, size: TerminalSize) -> None:
        await self._call(self._api.exec_resize, self._exec_id, size.rows, size.cols)


async def _apply(
    inputs: AsyncIterator[ExecInput],
    writer: asyncio.StreamWriter,
    resize: Callable[[TerminalSize], Awaitable[None]],
    send_signal: Signal,
    eof_at_end: bool,
) -> None:
    """Apply each input in order. Without a terminal, the end of the inputs is the end of stdin."""
    async for item in inputs:
        if item.stdin:
            writer.write(item.stdin)
            await writer.drain()
        elif item.close_stdin:
            writer.write_eof()
        elif item.resize is not None:
            await resize(item.resize)
        elif item.signal:
            await send_signal(item.signal)
    if eof_at_end and writer.can_write_eof() and not writer.transport.is_closing():
        writer.write_eof()


def _end_if_failed(task: asyncio.Task[None], writer: asyncio.StreamWriter) -> None:
    """An input that cannot be applied (a bad one, or docker refusing it) ends the exec: the caller
    gets the error, and the run is killed as for a caller who left."""
    if not task.cancelled() and task.exception() is not None:
        writer.transport.abort()


async def _framed(reader: asyncio.StreamReader, early: bytes) -> AsyncGenerator[ExecChunk, None]:
    """docker's multiplexed stream: 8-byte headers name stdout (1) or stderr (2) and a length."""
    frames = _Frames(reader, early)
    while header := await frames.read(8):
        kind, size = struct.unpack(">BxxxL", header)
        data = await frames.read(size)
        yield ExecChunk(stream="stderr" if kind == 2 else "stdout", data=data)


async def _raw(reader: asyncio.StreamReader, early: bytes) -> AsyncGenerator[ExecChunk, None]:
    """A terminal's output, unframed, as it arrives."""
    if early:
        yield ExecChunk(stream="stdout", data=early)
    while True:
        try:
            data = await reader.read(OUTPUT_CHUNK)
        except OSError:
            return
        if not data:
            return
        yield ExecChunk(stream="stdout", data=data)
