"""Docker + gVisor (runsc). Blocking SDK calls run on bounded worker threads, never on the event loop.

dockerd's and runsc's own error text names host paths, runtimes and internals: it goes to this
process's log only. Callers get a stable message that says what failed and what a person can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import subprocess
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
from docker.types import Mount

from control_plane.errors import FailedPrecondition, InvalidArgument, SandgateError, Unavailable
from control_plane.sessions.docker_events import follow_exits
from control_plane.sessions.docker_exec import Call, attach
from control_plane.sessions.docker_interactive import attach_interactive, signal_run, terminal_env
from control_plane.sessions.runtime import (
    FORWARDER,
    NODE_LABEL,
    SANDBOX_MOUNT,
    SANDBOX_USER,
    SESSION_LABEL,
    ContainerSpec,
    ExecChunk,
    ExecInput,
    InteractiveCommand,
    SandboxExit,
    container_name,
)
from control_plane.workers import FairWorkers, Workers

log = logging.getLogger(__name__)
RUNSC_ROOT = "/var/run/docker/runtime-runc/moby"
KILL_TIMEOUT_S = 10.0
ABNORMAL_EXIT = 126  # and up: what a running exec reports when its sandbox dies (127, 128, 137 measured)
STOP_POLLS, STOP_POLL_S = 4, 0.1  # docker may see an exec end up to ~0.1 s before its container (measured)
T = TypeVar("T")


@dataclass(frozen=True)
class RuntimeWorkers:
    """Where the runtime's blocking calls run, and how long each may take."""

    control: Workers  # create, remove, scans: the control plane's own
    sessions: FairWorkers  # exec and files, fair per session
    call_timeout_s: float  # each HTTP request to dockerd (connect, and every read)
    connections: int  # the SDK's connection pool: one per thread that may call at once

    @property
    def deadline_s(self) -> float:
        """A caller is released after this long even if dockerd still trickles: a call may make a few requests."""
        return 3 * self.call_timeout_s


class DockerRuntime:
    """Every SDK call has a deadline; lifecycle calls run on the control plane's own workers, and calls
    made for a session (exec, files) on the sessions' workers, at most a few at a time per session."""

    def __init__(self, runtime: str, workers: RuntimeWorkers, runsc_binary: str = "runsc") -> None:
        self._runtime = runtime
        self._runsc = runsc_binary
        self._workers = workers
        self._client: Any = None

    def _docker(self) -> Any:
        if self._client is None:
            try:
                self._client = docker.from_env(timeout=math.ceil(self._workers.call_timeout_s),
                                               max_pool_size=self._workers.connections)  # fmt: skip
            except docker.errors.DockerException as exc:
                raise _unavailable("reach dockerd", exc) from None
        return self._client

    async def _control(self, fn: Callable[..., T], *args: Any) -> T:
        """A lifecycle call (create, remove, scan) on the control plane's own threads."""
        try:
            return await self._workers.control.run(self._workers.deadline_s, fn, *args)
        except TimeoutError as exc:
            raise Unavailable(f"dockerd did not answer within {self._workers.deadline_s:g} s") from exc

    async def _for_session(self, session_id: str, fn: Callable[..., T], *args: Any) -> T:
        """A call made on a session's behalf; a sandbox that is not running is a FailedPrecondition."""
        try:
            return await self._workers.sessions.run(session_id, self._workers.deadline_s, fn, *args)
        except TimeoutError as exc:
            raise Unavailable(f"dockerd did not answer within {self._workers.deadline_s:g} s") from exc
        except docker.errors.NotFound as exc:
            raise FailedPrecondition(f"the sandbox of session {session_id} is gone") from exc
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # "container ... is not running"
                raise FailedPrecondition(await self._not_running(session_id)) from exc
            raise _unavailable(f"run a command in the sandbox of session {session_id}", exc) from None

    async def _not_running(self, session_id: str) -> str:
        def state() -> dict[str, Any]:
            return dict(self._docker().api.inspect_container(container_name(session_id))["State"])

        try:
            st = await self._control(state)
        except (docker.errors.DockerException, Unavailable):
            return f"the sandbox of session {session_id} is not running"
        ended = SandboxExit(session_id, int(st.get("ExitCode", -1)), bool(st.get("OOMKilled")))
        return f"the sandbox of session {session_id} is not running ({ended.reason})"

    async def image_exists(self, image: str) -> bool:
        def probe() -> bool:
            try:
                self._docker().images.get(image)
            except docker.errors.ImageNotFound:
                return False
            except docker.errors.DockerException as exc:
                raise _unavailable(f"look up image {image}", exc) from None
            return True

        return await self._control(probe)

    async def runtime_binary(self) -> str:
        """The binary dockerd runs for this runtime (its `runtimes.<name>.path`), as dockerd reports it.

        Raises FailedPrecondition if dockerd has no such runtime, Unavailable if dockerd does not answer.
        """

        def lookup() -> str:
            try:
                runtimes = self._docker().info().get("Runtimes") or {}
            except docker.errors.DockerException as exc:
                raise _unavailable("list its runtimes", exc) from None
            if self._runtime not in runtimes:
                raise FailedPrecondition(f"dockerd has no runtime {self._runtime!r}: register it in daemon.json "
                                         "(scripts/setup.sh does) and reload dockerd")  # fmt: skip
            return str(runtimes[self._runtime].get("path") or self._runtime)

        return await self._control(lookup)

    async def start(self, spec: ContainerSpec) -> str:
        try:
            return await self._control(self._run, spec)
        except (docker.errors.DockerException, Unavailable) as exc:
            with contextlib.suppress(Unavailable):
                await self.remove(spec.session_id)
            await self.delete_orphans()  # a failed runsc start leaks its sandbox processes
            if isinstance(exc, docker.errors.ImageNotFound):
                raise InvalidArgument(f"image {spec.image!r} is not present on this host", field="image") from None
            if isinstance(exc, Unavailable):
                raise
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
            await self._control(self._remove, container_name(session_id))
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

        return await self._control(scan)

    async def delete_orphans(self) -> list[str]:
        return await self._control(self._delete_orphaned_sandboxes)

    async def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        """Run argv under the forwarder's `run` (timeout, process group); a consumer that leaves early
        (a cancelled client) gets the process group killed."""
        run_id = secrets.token_hex(8)
        finished = False
        command = [FORWARDER, "run", str(timeout_s), run_id, *argv]
        try:
            async with contextlib.aclosing(self._attach(session_id, command, env, stdin)) as chunks:
                async for chunk in chunks:
                    finished = chunk.exit_code is not None
                    yield chunk
        finally:
            if not finished:
                await self._kill_run(session_id, run_id)

    async def _kill_run(self, session_id: str, run_id: str) -> None:
        """Best effort, and bounded: the sandbox may be gone, or too busy to start one more process."""
        with contextlib.suppress(SandgateError, docker.errors.DockerException, TimeoutError):
            async with asyncio.timeout(KILL_TIMEOUT_S):
                await self._collect(session_id, [FORWARDER, "kill", run_id], b"")

    async def write_file(self, session_id: str, path: str, data: bytes, max_bytes: int) -> None:
        result = await self._collect(session_id, [FORWARDER, "write", path, str(max_bytes)], data)
        if result.exit_code != 0:
            raise InvalidArgument(result.data.decode(errors="replace").strip() or "cannot write", field="path")

    async def read_file(self, session_id: str, path: str, max_bytes: int) -> AsyncIterator[bytes]:
        errors = bytearray()
        async with contextlib.aclosing(
            self._attach(session_id, [FORWARDER, "read", path, str(max_bytes)], {}, b"")
        ) as chunks:
            async for chunk in chunks:
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
        async with contextlib.aclosing(self._attach(session_id, command, {}, stdin)) as chunks:
            async for chunk in chunks:
                if chunk.stream == "stderr":
                    err += chunk.data
                if chunk.exit_code is not None:
                    code = chunk.exit_code
        return ExecChunk(stream="stderr", data=bytes(err), exit_code=code)

    def _attach(
        self, session_id: str, command: list[str], env: Mapping[str, str], stdin: bytes
    ) -> AsyncGenerator[ExecChunk, None]:
        return self._guarded(session_id, lambda call, api, name: attach(call, api, name, command, env, stdin))

    def exec_interactive(
        self, session_id: str, command: InteractiveCommand, inputs: AsyncIterator[ExecInput]
    ) -> AsyncIterator[ExecChunk]:
        """Like `exec`, with inputs applied while it runs; signals reach the run's process group."""
        run_id = secrets.token_hex(8)

        async def send_signal(signum: int) -> None:
            await signal_run(lambda argv: self._collect(session_id, argv, b""), run_id, signum)

        def start(call: Call, api: Any, name: str) -> AsyncGenerator[ExecChunk, None]:
            argv = [FORWARDER, "run", str(command.timeout_s), run_id, *command.argv]
            env = {**command.env, **terminal_env(command)}
            return attach_interactive(call, api, name, argv, env, command.pty, inputs, send_signal)

        return self._killed_if_left(session_id, run_id, self._guarded(session_id, start))

    async def _killed_if_left(
        self, session_id: str, run_id: str, chunks: AsyncGenerator[ExecChunk, None]
    ) -> AsyncGenerator[ExecChunk, None]:
        finished = False
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    finished = chunk.exit_code is not None
                    yield chunk
        finally:
            if not finished:
                await self._kill_run(session_id, run_id)

    async def _guarded(
        self, session_id: str, start: Callable[[Call, Any, str], AsyncGenerator[ExecChunk, None]]
    ) -> AsyncGenerator[ExecChunk, None]:
        """An exec's chunks, with dockerd's errors made Unavailable and a dead sandbox reported as such."""

        async def call(fn: Callable[..., T], *args: Any) -> T:
            return await self._for_session(session_id, fn, *args)

        name = container_name(session_id)
        try:
            async with contextlib.aclosing(start(call, self._docker().api, name)) as chunks:
                async for chunk in chunks:
                    if chunk.exit_code is not None and chunk.exit_code >= ABNORMAL_EXIT:
                        await self._fail_if_stopped(session_id)
                    yield chunk
        except docker.errors.DockerException as exc:
            raise _unavailable(f"run a command in the sandbox of session {session_id}", exc) from None

    async def _fail_if_stopped(self, session_id: str) -> None:
        """An exec that ended abnormally (126 and up: not run, not found, a signal) may have ended
        because its sandbox died: then that is the answer, not the exit code. docker is asked a few
        times: it may report the exec's end before it has seen the container stop."""

        def running() -> bool:
            return bool(self._docker().api.inspect_container(container_name(session_id))["State"]["Running"])

        for poll in range(STOP_POLLS):
            if not await self._for_session(session_id, running):
                raise FailedPrecondition(await self._not_running(session_id))
            if poll + 1 < STOP_POLLS:
                await asyncio.sleep(STOP_POLL_S)

    def exits(self, node_id: str) -> AsyncIterator[SandboxExit]:
        return follow_exits(self._docker, node_id)


def _unavailable(action: str, exc: docker.errors.DockerException) -> Unavailable:
    """dockerd's own words to the log; to the caller, what failed and what to do."""
    status = getattr(exc, "status_code", None)
    log.error("docker: could not %s (status %s): %s", action, status, exc)
    return Unavailable(
        f"the container runtime could not {action}. Try again; if it repeats, an operator finds "
        "dockerd's reason in the control plane log"
    )
