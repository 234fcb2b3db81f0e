"""Docker + gVisor (runsc). Blocking SDK calls run in threads, never on the event loop.

dockerd's and runsc's own error text names host paths, runtimes and internals: it goes to this
process's log only. Callers get a stable message that says what failed and what a person can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import subprocess
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any

import docker
import docker.errors
from docker.types import Mount

from control_plane.errors import InvalidArgument, Unavailable
from control_plane.sessions.runtime import (
    FORWARDER,
    NODE_LABEL,
    SANDBOX_MOUNT,
    SANDBOX_USER,
    SESSION_LABEL,
    ContainerSpec,
    ExecChunk,
    container_name,
)

log = logging.getLogger(__name__)
RUNSC_ROOT = "/var/run/docker/runtime-runc/moby"
EXEC_ATTEMPTS = 3
EXIT_CODE_WAIT_S = 5.0  # how long docker may take to record an exec's exit code after its output ended
OCI_EXEC_FAILED = b"OCI runtime exec failed"  # docker's words when runsc could not start an exec


class DockerRuntime:
    def __init__(self, runtime: str = "runsc-sandgate", runsc_binary: str = "runsc") -> None:
        self._runtime = runtime
        self._runsc = runsc_binary
        self._client: Any = None

    def _docker(self) -> Any:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=60)
            except docker.errors.DockerException as exc:
                log.error("docker: cannot connect: %s", exc)
                raise Unavailable(
                    "the container runtime (dockerd) cannot be reached; an operator can check that it runs"
                ) from None
        return self._client

    async def image_exists(self, image: str) -> bool:
        def probe() -> bool:
            try:
                self._docker().images.get(image)
            except docker.errors.ImageNotFound:
                return False
            except docker.errors.DockerException as exc:
                raise _unavailable(f"look up image {image}", exc) from None
            return True

        return await asyncio.to_thread(probe)

    async def start(self, spec: ContainerSpec) -> str:
        try:
            return await asyncio.to_thread(self._run, spec)
        except docker.errors.DockerException as exc:
            with contextlib.suppress(Unavailable):
                await self.remove(spec.session_id)
            await self.delete_orphans()  # a failed runsc start leaks its sandbox processes
            if isinstance(exc, docker.errors.ImageNotFound):
                raise InvalidArgument(f"image {spec.image!r} is not present on this host", field="image") from None
            raise _unavailable(f"start the sandbox of session {spec.session_id} (nothing was kept)", exc) from None

    def _run(self, spec: ContainerSpec) -> str:
        limits = spec.limits
        container = self._docker().containers.run(
            spec.image,
            entrypoint=[FORWARDER],
            command=["serve", str(spec.forward_port), f"{SANDBOX_MOUNT}/proxy.sock"],
            name=container_name(spec.session_id),
            detach=True,
            runtime=self._runtime,
            network_mode="none",
            dns=["127.0.0.1"],  # the sandbox's own loopback: the host's resolver is not even named
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={spec.scratch_mb}m,mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=SANDBOX_USER,
            working_dir="/tmp",
            hostname="sandbox",
            mem_limit=f"{limits.memory_mb}m",
            memswap_limit=f"{limits.memory_mb}m",
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            environment=dict(spec.env),
            labels={SESSION_LABEL: spec.session_id, NODE_LABEL: spec.node_id},
            mounts=[Mount(target=SANDBOX_MOUNT, source=str(spec.socket_dir), type="bind", read_only=True)],
        )
        return str(container.id)

    async def remove(self, session_id: str) -> None:
        try:
            await asyncio.to_thread(self._remove, container_name(session_id))
        except docker.errors.DockerException as exc:  # the next start's reconcile removes what is left
            raise _unavailable(f"remove the sandbox of session {session_id}", exc) from None

    def _remove(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._docker().api.remove_container(name, force=True)

    def _delete_orphaned_sandboxes(self) -> list[str]:
        """A failed runsc start leaks runsc-sandbox/gofer processes that docker no longer knows."""
        try:
            listed = subprocess.run([self._runsc, "--root", RUNSC_ROOT, "list", "-quiet"],
                                    capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return []
        known = {c.id for c in self._docker().containers.list(all=True, sparse=True)}
        orphans = [cid for cid in listed.stdout.split() if cid not in known]
        for cid in orphans:
            log.warning("deleting orphaned runsc sandbox %s", cid)
            subprocess.run([self._runsc, "--root", RUNSC_ROOT, "delete", "--force", cid],
                           capture_output=True, timeout=30, check=False)  # fmt: skip
        return orphans

    async def managed(self, node_id: str) -> dict[str, bool]:
        """Containers Sandgate started for `node_id`: session id to whether it is running."""

        def scan() -> dict[str, bool]:
            found = self._docker().containers.list(all=True, filters={"label": f"{NODE_LABEL}={node_id}"})
            return {c.labels[SESSION_LABEL]: c.status == "running" for c in found}

        return await asyncio.to_thread(scan)

    async def delete_orphans(self) -> list[str]:
        return await asyncio.to_thread(self._delete_orphaned_sandboxes)

    async def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        """Run argv under the forwarder's `run` (timeout, process group); a consumer that leaves early
        (a cancelled client) gets the process group killed."""
        run_id = secrets.token_hex(8)
        finished = False
        try:
            async for chunk in self._attach(session_id, [FORWARDER, "run", str(timeout_s), run_id, *argv], env, stdin):
                finished = chunk.exit_code is not None
                yield chunk
        finally:
            if not finished:
                await self._kill_run(session_id, run_id)

    async def _kill_run(self, session_id: str, run_id: str) -> None:
        with contextlib.suppress(Unavailable):
            async for _ in self._attach(session_id, [FORWARDER, "kill", run_id], {}, b""):
                pass

    async def write_file(self, session_id: str, path: str, data: bytes, max_bytes: int) -> None:
        result = await self._collect(session_id, [FORWARDER, "write", path, str(max_bytes)], data)
        if result.exit_code != 0:
            raise InvalidArgument(result.data.decode(errors="replace").strip() or "cannot write", field="path")

    async def read_file(self, session_id: str, path: str, max_bytes: int) -> AsyncIterator[bytes]:
        errors = bytearray()
        async for chunk in self._attach(session_id, [FORWARDER, "read", path, str(max_bytes)], {}, b""):
            if chunk.exit_code not in (None, 0):
                raise InvalidArgument(errors.decode(errors="replace").strip() or "cannot read", field="path")
            if chunk.stream == "stdout":
                yield chunk.data
            elif chunk.stream == "stderr":
                errors += chunk.data

    async def _collect(self, session_id: str, command: list[str], stdin: bytes) -> ExecChunk:
        """Run a short helper command; returns its exit code with its stderr as data."""
        err = bytearray()
        code = -1
        async for chunk in self._attach(session_id, command, {}, stdin):
            if chunk.stream == "stderr":
                err += chunk.data
            if chunk.exit_code is not None:
                code = chunk.exit_code
        return ExecChunk(stream="stderr", data=bytes(err), exit_code=code)

    async def _attach(
        self, session_id: str, command: list[str], env: Mapping[str, str], stdin: bytes
    ) -> AsyncIterator[ExecChunk]:
        """docker exec, streamed; a docker failure is Unavailable (the sandbox stopped, or dockerd is away)."""
        try:
            async with contextlib.aclosing(self._attach_tries(session_id, command, env, stdin)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except docker.errors.DockerException as exc:
            raise _unavailable(f"run a command in the sandbox of session {session_id}", exc) from None

    async def _attach_tries(
        self, session_id: str, command: list[str], env: Mapping[str, str], stdin: bytes
    ) -> AsyncGenerator[ExecChunk, None]:
        """docker exec, streamed. An exec that runsc failed to start (docker's "OCI runtime exec failed",
        exit 126, no process ever had a pid) is tried again: it happens now and then under churn, and
        nothing ran, so nothing runs twice."""
        api = self._docker().api
        for attempt in range(1, EXEC_ATTEMPTS + 1):
            exec_id = await asyncio.to_thread(
                api.exec_create, container_name(session_id), command, stdin=True,
                environment=dict(env), user=SANDBOX_USER, workdir="/tmp",
            )  # fmt: skip
            held: ExecChunk | None = None  # a first chunk that may be docker's "did not start" message
            first = True
            async with contextlib.aclosing(_output(api, exec_id, stdin)) as output:  # closed if we are left early
                async for chunk in output:
                    if first and chunk.data.startswith(OCI_EXEC_FAILED):
                        held, first = chunk, False
                        continue
                    first = False
                    if held is not None:  # more output: the program did run, and said so
                        yield held
                        held = None
                    yield chunk
            info = await _finished(api, exec_id, session_id)
            code = int(info["ExitCode"])
            if held is None or code != 126 or info.get("Pid") or attempt == EXEC_ATTEMPTS:
                if held is not None:
                    _refuse_if_never_started(held, code, info, session_id)
                    yield held
                yield ExecChunk(exit_code=code)
                return
            log.warning("exec in session %s did not start (%r); trying again", session_id, held.data[:200])
            await asyncio.sleep(0.2 * attempt)


async def _finished(api: Any, exec_id: str, session_id: str) -> dict[str, Any]:
    """The exec's final state, once docker has its exit code. Its output stream has ended, so the process
    has too, but docker may record the code a moment later; a code it never records is an error, never 0.

    Raises Unavailable if docker has no exit code after EXIT_CODE_WAIT_S.
    """
    deadline = time.monotonic() + EXIT_CODE_WAIT_S
    while True:
        info: dict[str, Any] = await asyncio.to_thread(api.exec_inspect, exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return info
        if time.monotonic() > deadline:
            raise Unavailable(f"the command's output ended but the container runtime has no exit code for it "
                              f"(session {session_id}); the sandbox may have died")  # fmt: skip
        await asyncio.sleep(0.05)


async def _output(api: Any, exec_id: str, stdin: bytes) -> AsyncGenerator[ExecChunk, None]:
    """Start an exec and stream its output until it ends; a consumer that leaves early closes it."""
    queue: asyncio.Queue[ExecChunk | None] = asyncio.Queue(maxsize=64)
    loop = asyncio.get_running_loop()
    raw = await asyncio.to_thread(api.exec_start, exec_id, socket=True)
    reader = loop.run_in_executor(None, _pump, raw._sock, stdin, queue, loop)
    try:
        while (chunk := await queue.get()) is not None:
            yield chunk
        await reader
    finally:
        with contextlib.suppress(OSError):
            raw._sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv(); close() alone does not
        raw._sock.close()
        while not reader.done():  # unblock the pump if the consumer left early
            while not queue.empty():
                queue.get_nowait()
            await asyncio.sleep(0.01)


def _pump(
    sock: socket.socket, stdin: bytes, queue: asyncio.Queue[ExecChunk | None], loop: asyncio.AbstractEventLoop
) -> None:
    """Write stdin, then demultiplex docker's framed stdout/stderr into the queue (blocking thread)."""

    def put(item: ExecChunk | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    # The client's socket timeout (docker.from_env(timeout=...)) is for API calls: on an exec stream, a
    # quiet command would hit it and look like the end of its output. The command's own timeout is
    # enforced inside the sandbox (`sandgate-forward run`), and a consumer that leaves closes the socket.
    sock.settimeout(None)
    try:
        if stdin:
            sock.sendall(stdin)
        sock.shutdown(socket.SHUT_WR)
        while header := _read_exact(sock, 8):
            kind, size = struct.unpack(">BxxxL", header)
            data = _read_exact(sock, size)
            put(ExecChunk(stream="stderr" if kind == 2 else "stdout", data=data))
    except OSError:
        pass
    finally:
        put(None)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        part = sock.recv(size - len(buf))
        if not part:
            return b""
        buf += part
    return bytes(buf)


def _refuse_if_never_started(held: ExecChunk, code: int, info: dict[str, Any], session_id: str) -> None:
    """After the last try nothing ran: docker's message names runsc's internals, so it goes to the log only."""
    if code == 126 and not info.get("Pid"):
        log.error("exec in session %s did not start after %d tries: %r", session_id, EXEC_ATTEMPTS, held.data[:500])
        raise Unavailable(
            f"the container runtime could not start the command in the sandbox of session {session_id} "
            f"({EXEC_ATTEMPTS} tries). Try again; if it repeats, an operator finds the reason in the control plane log"
        )


def _unavailable(action: str, exc: docker.errors.DockerException) -> Unavailable:
    """dockerd's own words to the log; to the caller, what failed and what to do."""
    status = getattr(exc, "status_code", None)
    log.error("docker: could not %s (status %s): %s", action, status, exc)
    return Unavailable(
        f"the container runtime could not {action}. Try again; if it repeats, an operator finds "
        "dockerd's reason in the control plane log"
    )
