"""A container runtime that starts nothing: for the control plane and Envoy without sandboxes (bench, service tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from control_plane.sessions.runtime import ContainerSpec, ExecChunk, ExecInput, InteractiveCommand, SandboxExit


class NoSandboxRuntime:
    """Starts no container: for figures about the control plane and Envoy, not about the sandbox itself."""

    async def image_exists(self, image: str) -> bool:
        return True

    async def start(self, spec: ContainerSpec) -> str:
        return f"none-{spec.session_id}"

    async def remove(self, session_id: str) -> None:
        return None

    async def managed(self, node_id: str) -> dict[str, bool]:
        return {}

    async def delete_orphans(self) -> list[str]:
        return []

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

    async def exits(self, node_id: str) -> AsyncIterator[SandboxExit]:
        """No sandbox ever stops on its own here: waits until cancelled."""
        await asyncio.Event().wait()
        yield SandboxExit("", 0)  # never reached; makes this an async generator
