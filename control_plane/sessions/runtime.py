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
    """One sandbox's container: whose it is, its image and limits, the session directory mounted read-only at
    /run/sandgate, the loopback port its forwarder listens on, its environment, and its /tmp size (MiB).
    Built in one place, `ManagerSettings.container_spec`."""

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
    """Where sandboxes run: one container per session, labelled with its session and node. Docker with runsc
    (`docker_runtime.DockerRuntime`) is the real one; tests use an in-memory one (`tests/support/no_sandbox.py`).

    Every method may raise Unavailable when the runtime cannot be reached or does not answer in time; a
    method whose sandbox is gone raises FailedPrecondition. Nothing else is an expected failure."""

    async def image_exists(self, image: str) -> bool:
        """Whether `image` (a reference such as "sandgate-sandbox:latest") is present on this host."""
        ...

    async def start(self, spec: ContainerSpec) -> str:
        """Create and start the container `spec` describes; its container id once it runs. A container of a
        previous attempt with the same session id is replaced."""
        ...

    async def remove(self, session_id: str) -> None:
        """Stop and remove the session's container, at once; idempotent (no container is not an error)."""
        ...

    async def managed(self, node_id: str) -> dict[str, bool]:
        """Every container of `node_id`, by session id: whether it is running."""
        ...

    async def delete_orphans(self) -> list[str]:
        """Delete sandboxes the runtime left behind without a container (failed starts); their ids."""
        ...

    def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        """Run `argv` as the sandbox user with exactly `env`, fed `stdin`: output chunks as they come, then
        one chunk with the exit code (124 once `timeout_s` seconds pass; the process group is killed). Closing
        the iterator early kills it too."""
        ...

    async def write_file(self, session_id: str, path: str, data: bytes, max_bytes: int) -> None:
        """Write `data` (at most `max_bytes`) to the absolute `path` in the sandbox, as the sandbox user;
        InvalidArgument (field "path") for a path it cannot write."""
        ...

    def exec_interactive(
        self, session_id: str, command: InteractiveCommand, inputs: AsyncIterator[ExecInput]
    ) -> AsyncIterator[ExecChunk]:
        """Run `command`, applying `inputs` (stdin, close, resize, signal) as they come, while its output
        streams; ends with one chunk with the exit code."""
        ...

    def read_file(self, session_id: str, path: str, max_bytes: int) -> AsyncIterator[bytes]:
        """The bytes of the regular file at `path` in the sandbox, in chunks; InvalidArgument (field "path")
        for a file that is missing, not regular, unreadable or larger than `max_bytes`."""
        ...

    def exits(self, node_id: str) -> AsyncIterator[SandboxExit]:
        """Every sandbox of `node_id` that stops, as it stops; endless (reconnects to the runtime)."""
        ...


def container_name(session_id: str) -> str:
    """The container's name: the session id, prefixed, so that one session has at most one container."""
    return f"sandgate-{session_id}"
