"""A running command (ExecInteractive): its output as it comes, stdin, a PTY's size, signals, its end.

A process is also the SDK's background process: start it, do other things, then `wait()` for it or
`kill()` it. It lives as long as its call: closing the client, or `cancel()`, kills its process group.
"""

from __future__ import annotations

import signal as signals
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from sandgate import errors
from sandgate.models import ExecResult, Output

EXEC_DEADLINE_MARGIN_S = 30  # a command's own timeout bounds its call, with this margin for teardown


class AsyncProcess:
    """Iterate it (`async for out in process`) for `Output` pieces; `exit_code` is set once it ended."""

    def __init__(self, call: Any, pty: bool) -> None:
        self._call = call
        self.pty = pty
        self.exit_code: int | None = None

    @classmethod
    async def start(cls, grpc_: Any, start: pb.ExecStart) -> AsyncProcess:
        """Open the call and send `start`; the process runs from here (its errors come with the output)."""
        deadline = start.timeout_seconds + EXEC_DEADLINE_MARGIN_S if start.timeout_seconds else None
        call = grpc_.stream_stream("ExecInteractive", pb.ExecInput, pb.ExecResponse, deadline)
        process = cls(call, start.HasField("pty"))
        await process._send(pb.ExecInput(start=start))
        return process

    async def write(self, data: bytes | str) -> None:
        """Send `data` (str is UTF-8 encoded) to the command's stdin (on a PTY: as typed keys)."""
        await self._send(pb.ExecInput(stdin=data.encode() if isinstance(data, str) else data))

    async def close_stdin(self) -> None:
        """End stdin (EOF). On a PTY this writes the terminal's EOF character, ^D."""
        await self._send(pb.ExecInput(stdin=b"\x04") if self.pty else pb.ExecInput(close_stdin=True))

    async def resize(self, rows: int, cols: int) -> None:
        """Set the PTY's size; InvalidArgument (field `resize`) without a PTY."""
        await self._send(pb.ExecInput(resize=pb.TerminalSize(rows=rows, cols=cols)))

    async def signal(self, signum: int) -> None:
        """Send a signal (e.g. `signal.SIGINT`) to the command's process group."""
        await self._send(pb.ExecInput(signal=int(signum)))

    async def kill(self) -> None:
        """SIGKILL to the command's process group; `wait()` then reports 137."""
        await self.signal(signals.SIGKILL)

    def cancel(self) -> None:
        """Abandon the call; the service kills the command's process group."""
        self._call.cancel()

    async def _send(self, message: pb.ExecInput) -> None:
        if self.exit_code is not None:
            return  # it has ended: nothing to deliver to
        try:
            await self._call.write(message)
        except grpc.RpcError as exc:
            raise errors.from_grpc(exc) from None
        except grpc.aio.UsageError:
            pass  # the call has finished; its outcome comes from reading

    def __aiter__(self) -> AsyncIterator[Output]:
        return self._output()

    async def _output(self) -> AsyncIterator[Output]:
        while self.exit_code is None:
            try:
                chunk = await self._call.read()
            except grpc.RpcError as exc:
                raise errors.from_grpc(exc) from None
            if chunk is grpc.aio.EOF:
                raise errors.Unavailable("the call ended before the command reported its exit code")
            kind = chunk.WhichOneof("output")
            if kind == "exit_code":
                self.exit_code = chunk.exit_code
            else:
                yield Output(kind, getattr(chunk, kind))

    async def wait(self) -> ExecResult:
        """Wait for the end; the result holds the output not already read by iterating."""
        out, err = bytearray(), bytearray()
        async for piece in self:
            (err if piece.stream == "stderr" else out).extend(piece.data)
        assert self.exit_code is not None
        return ExecResult(self.exit_code, bytes(out), bytes(err))
