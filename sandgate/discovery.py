"""Where the SDK finds the service, the way the `sandgate` CLI does: explicit arguments first, then
`SANDGATE_*` environment variables, then the config file (`SANDGATE_CONFIG`), then the defaults; a
token left unset is read from the state directory (`api-token`, `admin-token`) when first needed."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from control_plane import config
from control_plane.errors import SandgateError as ServiceConfigError
from sandgate.errors import ConfigurationError


@dataclass(frozen=True)
class Endpoints:
    """The two APIs' addresses and tokens. An empty token is read from `state_dir` when first needed."""

    grpc_addr: str
    admin_addr: str
    state_dir: Path
    api_token: str = ""
    admin_token: str = ""

    def sessions_token(self) -> str:
        """The gRPC API's bearer token; ConfigurationError naming the variable and file if there is none."""
        return self.api_token or _read_token(self.state_dir / "api-token", "SANDGATE_API_TOKEN")

    def admin_bearer(self) -> str:
        """The admin API's bearer token; ConfigurationError naming the variable and file if there is none."""
        return self.admin_token or _read_token(self.state_dir / "admin-token", "SANDGATE_ADMIN_TOKEN")


def discover(
    config_path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    grpc_addr: str = "",
    admin_addr: str = "",
    api_token: str = "",
    admin_token: str = "",
) -> Endpoints:
    """Endpoints from the arguments given (non-empty), the environment and the config file. Raises
    ConfigurationError (naming the key) for a config that cannot be read or is not valid."""
    environ = os.environ if environ is None else environ
    if config_path is None and environ.get("SANDGATE_CONFIG"):
        config_path = environ["SANDGATE_CONFIG"]
    try:
        s = config.load(Path(config_path) if config_path else None, environ)
    except ServiceConfigError as exc:
        raise ConfigurationError(exc.message, field=exc.field or "") from None
    return Endpoints(
        grpc_addr=grpc_addr or s.grpc_addr,
        admin_addr=admin_addr or s.admin_addr,
        state_dir=s.state_dir,
        api_token=api_token or s.api_token,
        admin_token=admin_token or s.admin_token,
    )


def _read_token(path: Path, variable: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"no token: set {variable}, pass it to connect(), or run as a user who can read {path} ({exc.strerror})"
        ) from None
