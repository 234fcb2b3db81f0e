"""The container runtime behind a small Protocol. Docker + runsc today; Kubernetes later."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from control_plane.domain.session import Limits

SESSION_LABEL = "sandgate.session"
NODE_LABEL = "sandgate.node"
SANDBOX_MOUNT = "/run/sandgate"
SANDBOX_UID = 65534  # nobody: the user every sandbox runs as
SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_UID}"
FORWARDER = f"{SANDBOX_MOUNT}/sandgate-forward"


@dataclass(frozen=True)
class ContainerSpec:
    session_id: str
    node_id: str
    image: str
    limits: Limits
    socket_dir: Path
    forward_port: int
    env: Mapping[str, str] = field(default_factory=dict)
    scratch_mb: int = 256


@dataclass(frozen=True)
class ExecChunk:
    """One piece of output (`stream` is "stdout" or "stderr"), or the end (`exit_code` set)."""

    stream: str = ""
    data: bytes = b""
    exit_code: int | None = None


@dataclass(frozen=True)
class TerminalSize:
    """A terminal's size in character cells."""

    rows: int
    cols: int


@dataclass(frozen=True)
class ExecInput:
    """One thing a caller does to a running interactive exec: stdin bytes, the end of stdin, a new
    terminal size, or a signal (a number) for the command's process group. Exactly one is set."""

    stdin: bytes = b""
    close_stdin: bool = False
    resize: TerminalSize | None = None
    signal: int = 0


@dataclass(frozen=True)
class InteractiveCommand:
    """What an interactive exec runs: `pty` set means on a pseudo-terminal of that size."""

    argv: Sequence[str]
    env: Mapping[str, str]
    timeout_s: int = 0
    pty: TerminalSize | None = None


@dataclass(frozen=True)
class SandboxExit:
    """A session's sandbox stopped: its container's exit code, and whether the kernel's OOM killer ended it."""

    session_id: str
    exit_code: int
    oom_killed: bool = False

    @property
    def reason(self) -> str:
        """What a person reads on the session, e.g. "sandbox-exited: exit code 137 (OOM killed)"."""
        why = " (OOM killed)" if self.oom_killed else " (killed)" if self.exit_code == 137 else ""
        return f"sandbox-exited: exit code {self.exit_code}{why}"

    @property
    def cause(self) -> str:
        """A closed set, for metrics and the decision log: oom-killed, killed, crashed."""
        if self.oom_killed:
            return "oom-killed"
        return "killed" if self.exit_code > 128 else "crashed"


class ContainerRuntime(Protocol):
    async def image_exists(self, image: str) -> bool: ...
    async def start(self, spec: ContainerSpec) -> str: ...
    async def remove(self, session_id: str) -> None: ...
    async def managed(self, node_id: str) -> dict[str, bool]: ...
    async def delete_orphans(self) -> list[str]: ...
    def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]: ...
    def exec_interactive(
        self, session_id: str, command: InteractiveCommand, inputs: AsyncIterator[ExecInput]
    ) -> AsyncIterator[ExecChunk]:
        """Run `command`, applying `inputs` as they come, while its output streams; ends with the exit code."""
        ...

    async def write_file(self, session_id: str, path: str, data: bytes, max_bytes: int) -> None: ...
    def read_file(self, session_id: str, path: str, max_bytes: int) -> AsyncIterator[bytes]: ...
    def exits(self, node_id: str) -> AsyncIterator[SandboxExit]:
        """Every sandbox of `node_id` that stops, as it stops; endless (reconnects to the runtime)."""
        ...


def container_name(session_id: str) -> str:
    return f"sandgate-{session_id}"
