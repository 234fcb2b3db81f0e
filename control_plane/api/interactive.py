"""ExecInteractive's request stream to domain inputs: the start message, then checked inputs."""

from __future__ import annotations

from collections.abc import AsyncIterator

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.errors import InvalidArgument
from control_plane.sessions.runtime import ExecInput, InteractiveCommand, TerminalSize

MAX_SIGNAL = 64
MAX_CELLS = 65535  # a terminal's rows and columns are 16-bit


async def first_command(requests: AsyncIterator[pb.ExecInput]) -> tuple[str, InteractiveCommand]:
    """The session id and the command of the stream's first message, which must be `start`."""
    first = await anext(requests, None)
    if first is None or first.WhichOneof("input") != "start":
        raise InvalidArgument("the first message must be start", field="start")
    start = first.start
    pty = terminal_size(start.pty, "start.pty") if start.HasField("pty") else None
    return start.session_id, InteractiveCommand(list(start.argv), dict(start.env), start.timeout_seconds, pty)


def terminal_size(size: pb.TerminalSize, field: str) -> TerminalSize:
    """A checked size: both rows and cols between 1 and 65535."""
    if not (0 < size.rows <= MAX_CELLS and 0 < size.cols <= MAX_CELLS):
        raise InvalidArgument(f"rows and cols must be between 1 and {MAX_CELLS}", field=field)
    return TerminalSize(size.rows, size.cols)


async def inputs(requests: AsyncIterator[pb.ExecInput], has_pty: bool) -> AsyncIterator[ExecInput]:
    """The messages after `start`, checked; a bad one raises InvalidArgument naming its field."""
    stdin_open = True
    async for req in requests:
        kind = req.WhichOneof("input")
        if kind == "stdin":
            if not stdin_open:
                raise InvalidArgument("stdin was already closed", field="stdin")
            yield ExecInput(stdin=req.stdin)
        elif kind == "close_stdin":
            stdin_open = False
            yield ExecInput(close_stdin=True)
        elif kind == "resize":
            if not has_pty:
                raise InvalidArgument("only a command started with a pty can be resized", field="resize")
            yield ExecInput(resize=terminal_size(req.resize, "resize"))
        elif kind == "signal":
            if not 0 < req.signal <= MAX_SIGNAL:
                raise InvalidArgument(f"a signal number is between 1 and {MAX_SIGNAL}", field="signal")
            yield ExecInput(signal=req.signal)
        else:
            raise InvalidArgument("start may be sent only once, first", field="start")
