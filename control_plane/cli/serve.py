"""`sandgate serve`: the control plane and its managed Envoy, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from control_plane import config
from control_plane.sessions.runtime import ContainerRuntime


def serve(settings: config.Settings, log_level: str, runtime: ContainerRuntime | None = None) -> int:
    """Serve until SIGINT or SIGTERM, then stop; `runtime` None: docker with runsc (the tests pass another)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_run(settings, runtime))
    return 0


async def _run(settings: config.Settings, runtime: ContainerRuntime | None) -> None:
    from control_plane.app import App

    app = App(settings, runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        print(
            f"sandgate: serving. sessions API {settings.grpc_addr}, admin http://127.0.0.1:{app.ports.admin}; "
            f"tokens in {settings.state_dir}/api-token and admin-token",
            flush=True,
        )
        await stop.wait()
    finally:
        await app.stop()  # also after a failed start: whatever it had started is stopped
