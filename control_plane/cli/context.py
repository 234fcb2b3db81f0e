"""Where the CLI finds the service and its tokens: flags, then SANDGATE_* variables, then the state dir."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from control_plane import config
from control_plane.admin_client import AdminClient
from control_plane.cli.api import AdminApi
from control_plane.client import SessionsClient


@dataclass(frozen=True)
class CliContext:
    settings: config.Settings
    as_json: bool

    def _token(self, configured: str, filename: str, variable: str) -> str:
        if configured:
            return configured
        path = self.settings.state_dir / filename
        try:
            return path.read_text().strip()
        except OSError:
            raise SystemExit(f"sandgate: no token: set {variable}, or run as a user who can read {path}") from None

    def sessions(self) -> SessionsClient:
        token = self._token(self.settings.api_token, "api-token", "SANDGATE_API_TOKEN")
        return SessionsClient(self.settings.grpc_addr, token)

    def admin(self) -> AdminClient:
        token = self._token(self.settings.admin_token, "admin-token", "SANDGATE_ADMIN_TOKEN")
        return AdminClient(self.settings.admin_addr, token)

    def admin_api(self) -> AdminApi:
        return AdminApi(self.admin())


def context_from(args: argparse.Namespace) -> CliContext:
    """Settings from `--config` and the environment; `--grpc-addr` and `--admin-addr` override both."""
    overrides = {
        variable: value
        for variable, value in (("SANDGATE_GRPC_ADDR", args.grpc_addr), ("SANDGATE_ADMIN_ADDR", args.admin_addr))
        if value
    }
    settings = config.load(args.config, {**os.environ, **overrides})
    return CliContext(settings, bool(args.json))


def default_config() -> Path | None:
    path = os.environ.get("SANDGATE_CONFIG")
    return Path(path) if path else None
