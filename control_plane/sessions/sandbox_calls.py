"""Exec, WriteFile and ReadFile on a READY session's sandbox: checked, counted as activity, bounded in size and
time, and ended at once when the session ends or its sandbox dies (`Liveness`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath

from control_plane.domain import session as sess
from control_plane.domain.session import Session
from control_plane.errors import DeadlineExceeded, InvalidArgument, PayloadTooLarge
from control_plane.sessions import socket_dir
from control_plane.sessions.liveness import Liveness
from control_plane.sessions.manager import ManagerSettings, proxy_env, trust_env
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerRuntime, ExecChunk, ExecInput, InteractiveCommand

SCRATCH = PurePosixPath("/tmp")
ExecTimer = Callable[[float], None]  # told each Exec's duration, in seconds


def scratch_path(path: str) -> str:
    """An absolute path inside the sandbox's scratch space; InvalidArgument naming `path` otherwise."""
    p = PurePosixPath(path)
    if not p.is_absolute() or ".." in p.parts or SCRATCH not in p.parents or "\0" in path:
        raise InvalidArgument(f"{path!r} must be an absolute path under /tmp without '..'", field="path")
    return str(p)


class SandboxCalls:
    """Every call raises NotFound for an unknown session, FailedPrecondition for one that is not READY (or that
    ends while the call runs), and InvalidArgument naming the field for bad input."""

    def __init__(
        self,
        settings: ManagerSettings,
        registry: SessionRegistry,
        runtime: ContainerRuntime,
        liveness: Liveness,
        exec_timer: ExecTimer | None = None,
        inspects: Callable[[Session], bool] = lambda session: False,
    ) -> None:
        """`inspects(session)`: whether its sandbox trusts its own CA bundle (HTTPS inspection)."""
        self._inspects = inspects
        self._settings = settings
        self._registry = registry
        self._runtime = runtime
        self._liveness = liveness
        self._exec_timer = exec_timer

    def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        """Run `argv` in the sandbox with the session's env, `env` over it and the proxy env over both; the
        chunks of stdout and stderr as they come, then one with the exit code (124 after `timeout_s` seconds)."""
        full_env = self._exec_env(session_id, argv, env)
        chunks = self._runtime.exec(session_id, argv, full_env, stdin, timeout_s)
        return self._busy_while(session_id, self._liveness.stream(session_id, chunks))

    def exec_interactive(
        self, session_id: str, command: InteractiveCommand, inputs: AsyncIterator[ExecInput]
    ) -> AsyncIterator[ExecChunk]:
        """`exec` with stdin streamed, an optional PTY, resizes and signals (`inputs`, applied as they come)."""
        full = replace(command, env=self._exec_env(session_id, command.argv, command.env))
        chunks = self._runtime.exec_interactive(session_id, full, inputs)
        return self._busy_while(session_id, self._liveness.stream(session_id, chunks))

    def _exec_env(self, session_id: str, argv: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
        """The environment an exec runs with: the CA bundle's with inspection, the session's, the caller's
        (checked), then the proxy's."""
        session = self._registry.ready(session_id)
        if not argv or not argv[0]:
            raise InvalidArgument("must name a program to run", field="argv")
        extra = sess.validate_env(env, limits=self._settings.metadata_limits)
        token = (self._settings.socket_dir(session_id) / socket_dir.TOKEN_NAME).read_text()
        trust = trust_env(self._inspects(session))
        return {**trust, **session.env, **extra, **proxy_env(session_id, token, self._settings.forward_port)}

    async def _busy_while(self, session_id: str, chunks: AsyncGenerator[ExecChunk, None]) -> AsyncIterator[ExecChunk]:
        """A session is not idle while an Exec runs, however long it takes. A caller that leaves early
        closes the Exec at once (its process group is killed), not when the generator is collected."""
        self._registry.in_use(session_id, +1)
        started = time.monotonic()
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
        finally:
            self._registry.in_use(session_id, -1)
            if self._exec_timer:
                self._exec_timer(time.monotonic() - started)

    async def write_file(self, session_id: str, path: str, data: bytes) -> int:
        """Write `data` to `path` under /tmp in the sandbox; its size in bytes. PayloadTooLarge over
        `max_write_bytes`, DeadlineExceeded after `file_timeout_s` seconds."""
        self._registry.ready(session_id)
        self._registry.touch(session_id)
        limit = self._settings.max_write_bytes
        if len(data) > limit:
            raise PayloadTooLarge(f"at most {limit} bytes, got {len(data)}", field="data")
        writing = self._runtime.write_file(session_id, scratch_path(path), data, limit)
        try:
            await self._liveness.call(session_id, writing, self._deadline())
        except TimeoutError as exc:
            raise self._too_slow("WriteFile", path) from exc
        return len(data)

    async def read_file(self, session_id: str, path: str) -> AsyncIterator[bytes]:
        """The bytes of `path` under /tmp in the sandbox, in chunks, at most `max_read_bytes` in all;
        DeadlineExceeded after `file_timeout_s` seconds."""
        self._registry.ready(session_id)
        self._registry.touch(session_id)
        reading = self._runtime.read_file(session_id, scratch_path(path), self._settings.max_read_bytes)
        try:
            async with contextlib.aclosing(self._liveness.stream(session_id, reading, self._deadline())) as chunks:
                async for data in chunks:
                    yield data
        except TimeoutError as exc:
            raise self._too_slow("ReadFile", path) from exc

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._settings.file_timeout_s

    def _too_slow(self, call: str, path: str) -> DeadlineExceeded:
        timeout = self._settings.file_timeout_s
        return DeadlineExceeded(f"{call} of {path!r} took longer than {timeout:g} s", field="path")
