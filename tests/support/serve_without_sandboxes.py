"""`sandgate serve` over the in-memory runtime, for the service tier: `python -m tests.support.serve_without_sandboxes
--config PATH`. The real servers and a real managed Envoy; no container is ever started."""

from __future__ import annotations

import argparse
from pathlib import Path

from control_plane import config
from control_plane.cli.serve import serve
from tests.support.no_sandbox import NoSandboxRuntime


def main() -> int:
    parser = argparse.ArgumentParser(prog="serve_without_sandboxes")
    parser.add_argument("--config", type=Path, required=True)
    settings = config.load(parser.parse_args().config, environ={})
    return serve(settings, "INFO", runtime=NoSandboxRuntime(images={settings.default_image}))


if __name__ == "__main__":
    raise SystemExit(main())
