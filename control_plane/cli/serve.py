"""`sandgate serve`: the control plane and its managed Envoy, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from control_plane import config, logs
from control_plane.sessions.runtime import ContainerRuntime

log = logging.getLogger("sandgate")


def serve(
    settings: config.Settings,
    log_level: str,
    log_format: logs.LogFormat | None = None,
    runtime: ContainerRuntime | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM, then stop. `log_format` (text or json) overrides the `log_format`
    setting; `runtime` None: docker with runsc (the tests pass another)."""
    chosen = log_format or settings.log_format
    logs.configure(log_level, chosen)
    asyncio.run(_run(settings, chosen, runtime))
    return 0


async def _run(settings: config.Settings, log_format: logs.LogFormat, runtime: ContainerRuntime | None) -> None:
    from control_plane.app import App

    app = App(settings, runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        _say_serving(settings, app.ports.admin, log_format)
        await stop.wait()
    finally:
        await app.stop()  # also after a failed start: whatever it had started is stopped


def _say_serving(settings: config.Settings, admin_port: int, log_format: logs.LogFormat) -> None:
    """Where the APIs are and where their tokens are (never the tokens): a line for people, or a JSON record."""
    admin_url = f"http://127.0.0.1:{admin_port}"
    tokens = f"{settings.state_dir}/api-token and admin-token"
    if log_format == "json":
        fields = {"grpc_addr": settings.grpc_addr, "admin_url": admin_url, "state_dir": str(settings.state_dir)}
        log.info("serving", extra=fields)
    else:
        print(f"sandgate: serving. sessions API {settings.grpc_addr}, admin {admin_url}; tokens in {tokens}",
              flush=True)  # fmt: skip
