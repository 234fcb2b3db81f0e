"""A container runtime that starts nothing: the control plane and Envoy without sandboxes (bench, unit and
service tests). It keeps, in memory, what a real runtime would hold: which containers of which node are
running, which images exist, and the calls it was given, so that tests can look at the runtime's side."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from control_plane.sessions.runtime import ContainerSpec, ExecChunk, ExecInput, InteractiveCommand, SandboxExit

StartHook = Callable[[ContainerSpec], Awaitable[None]]


@dataclass
class Container:
    """One container this runtime "started"; `running` turns False when a test stops it."""

    spec: ContainerSpec
    container_id: str
    running: bool = True


@dataclass
class NoSandboxRuntime:
    """Starts no process: for figures and tests about the control plane and Envoy, not the sandbox itself.

    `images` lists the images that exist (None: every image). `on_start`, when set, runs inside `start`
    after the container is recorded and before `start` returns: a test holds a create mid-way with it.
    `fail_start` makes the next starts raise it. `exit` reports a sandbox death to `exits()`.
    """

    images: set[str] | None = None
    on_start: StartHook | None = None
    fail_start: BaseException | None = None
    containers: dict[str, Container] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    _exits: asyncio.Queue[SandboxExit] | None = None

    async def image_exists(self, image: str) -> bool:
        return self.images is None or image in self.images

    async def start(self, spec: ContainerSpec) -> str:
        if self.fail_start is not None:
            raise self.fail_start
        container = Container(spec, f"none-{spec.session_id}")
        self.containers[spec.session_id] = container
        if self.on_start is not None:
            await self.on_start(spec)
        return container.container_id

    async def remove(self, session_id: str) -> None:
        if self.containers.pop(session_id, None) is not None:
            self.removed.append(session_id)

    async def managed(self, node_id: str) -> dict[str, bool]:
        return {sid: c.running for sid, c in self.containers.items() if c.spec.node_id == node_id}

    async def delete_orphans(self) -> list[str]:
        found, self.orphans = self.orphans, []
        return found

    async def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        yield ExecChunk(exit_code=0)

    async def exec_interactive(
        self, session_id: str, command: InteractiveCommand, inputs: AsyncIterator[ExecInput]
    ) -> AsyncIterator[ExecChunk]:
        yield ExecChunk(exit_code=0)

    async def write_file(self, session_id: str, path: str, data: bytes, max_bytes: int) -> None:
        return None

    async def read_file(self, session_id: str, path: str, max_bytes: int) -> AsyncIterator[bytes]:
        yield b""

    def exit(self, session_id: str, exit_code: int = 137, oom_killed: bool = False) -> None:
        """The sandbox of `session_id` stops: no longer running, and reported to `exits()`."""
        container = self.containers.get(session_id)
        if container is not None:
            container.running = False
        self._queue().put_nowait(SandboxExit(session_id, exit_code, oom_killed))

    async def exits(self, node_id: str) -> AsyncIterator[SandboxExit]:
        """The deaths `exit` reports, as they come; waits until cancelled."""
        queue = self._queue()
        while True:
            yield await queue.get()

    def _queue(self) -> asyncio.Queue[SandboxExit]:
        if self._exits is None:
            self._exits = asyncio.Queue()
        return self._exits
