"""The `sandgate` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from control_plane import config
from control_plane.errors import SandgateError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandgate", description="Egress control plane for gVisor sandboxes.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the control plane and a managed Envoy")
    serve.add_argument("--config", type=Path, help="TOML config file (SANDGATE_* variables override it)")
    serve.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        return _serve(args)
    except SandgateError as exc:
        print(f"sandgate: {exc}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = config.load(args.config)
    asyncio.run(_run(settings))
    return 0


async def _run(settings: config.Settings) -> None:
    from control_plane.app import App

    app = App(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    print(f"sandgate: serving; sessions API {settings.grpc_addr}; tokens in {settings.state_dir}", flush=True)
    await stop.wait()
    await app.stop()
