"""Settings: parsed and validated once at start from a TOML file plus SANDGATE_* environment overrides."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.domain.destinations import DEFAULT_FORBIDDEN, parse_cidrs
from control_plane.errors import InvalidArgument

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    state_dir: Path = Path("/var/lib/sandgate")
    grpc_addr: str = "127.0.0.1:50051"
    admin_addr: str = "127.0.0.1:8081"
    xds_addr: str = "127.0.0.1:18000"
    api_token: str = ""
    admin_token: str = ""
    node_id: str = "sandgate-local"
    manage_envoy: bool = True
    envoy_binary: str = ""
    envoy_admin_port: int = 9901
    envoy_concurrency: int = 1
    xds_api: str = "DELTA_GRPC"
    default_image: str = "sandgate-sandbox:latest"
    container_runtime: str = "runsc-sandgate"
    forwarder_binary: Path = REPO / "build" / "sandgate-forward"
    forward_port: int = 3128
    default_ttl_seconds: int = 3600
    max_ttl_seconds: int = 86400
    max_sessions: int = 500
    default_memory_mb: int = 512
    default_cpus: float = 1.0
    default_pids: int = 512
    dns_resolvers: tuple[str, ...] = ()
    dns_lookup_family: str = "V4_PREFERRED"
    apply_timeout_seconds: float = 10.0
    allow_broad_wildcards: bool = False
    forbidden_cidrs: tuple[str, ...] = DEFAULT_FORBIDDEN
    forbidden_exceptions: tuple[str, ...] = ()
    forbid_host_addresses: bool = True
    decision_retention: int = 100_000
    warm_pool_size: int = 2
    end_sessions_on_shutdown: bool = False
    # What one session may take of Envoy (docs/SECURITY.md, "Tenants").
    session_max_connections: int = 1024
    session_requests_per_second: int = 500
    session_request_burst: int = 1000
    session_tunnels_per_second: int = 100
    session_tunnel_burst: int = 500
    connection_buffer_bytes: int = 32 << 10
    # The egress cluster's circuit breakers, shared by all sessions: kept above any one session's reach.
    egress_max_connections: int = 100_000
    egress_max_pending_requests: int = 100_000
    egress_max_requests: int = 100_000
    egress_max_retries: int = 1024
    # The managed Envoy as a whole; 0 picks a value from this host (see docs/CONFIG.md).
    envoy_max_downstream_connections: int = 0
    envoy_max_heap_bytes: int = 0


ENV_OVERRIDES = {
    "SANDGATE_API_TOKEN": "api_token",
    "SANDGATE_ADMIN_TOKEN": "admin_token",
    "SANDGATE_GRPC_ADDR": "grpc_addr",
    "SANDGATE_ADMIN_ADDR": "admin_addr",
    "SANDGATE_XDS_ADDR": "xds_addr",
    "SANDGATE_STATE_DIR": "state_dir",
    "SANDGATE_NODE_ID": "node_id",
    "SANDGATE_DEFAULT_IMAGE": "default_image",
    "SANDGATE_DNS_RESOLVERS": "dns_resolvers",
    "SANDGATE_ENVOY_ADMIN_PORT": "envoy_admin_port",
}
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (TOML, optional), apply environment overrides, validate. Raises InvalidArgument naming the key."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"cannot read config file {path}: {exc}", field="config") from exc
    for var, key in ENV_OVERRIDES.items():
        if environ.get(var):
            raw[key] = environ[var].split(",") if key == "dns_resolvers" else environ[var]
    values = {key: _coerce(key, value) for key, value in raw.items()}
    settings = Settings(**values)
    _validate(settings)
    return settings


def _coerce(key: str, value: Any) -> Any:
    if key not in _FIELDS:
        raise InvalidArgument(f"unknown setting {key!r}", field=key)
    default = getattr(Settings(), key)
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes"}
        if isinstance(default, Path):
            return Path(str(value))
        if isinstance(default, tuple):
            return tuple(str(v).strip() for v in value if str(v).strip())
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"expected {type(default).__name__}, got {value!r}", field=key) from exc


def _validate(s: Settings) -> None:
    for key in ("grpc_addr", "admin_addr", "xds_addr"):
        split_addr(getattr(s, key), key)
    for resolver in s.dns_resolvers:
        split_addr(resolver, "dns_resolvers")
    if not 1 <= s.default_ttl_seconds <= s.max_ttl_seconds:
        raise InvalidArgument("must be between 1 and max_ttl_seconds", field="default_ttl_seconds")
    if not 0 <= s.warm_pool_size <= 64:
        raise InvalidArgument("must be between 0 and 64", field="warm_pool_size")
    if s.max_sessions < 1:
        raise InvalidArgument("must be at least 1", field="max_sessions")
    if s.xds_api not in {"GRPC", "DELTA_GRPC"}:
        raise InvalidArgument("must be GRPC (state of the world) or DELTA_GRPC", field="xds_api")
    parse_cidrs(s.forbidden_cidrs, "forbidden_cidrs")
    parse_cidrs(s.forbidden_exceptions, "forbidden_exceptions")
    if s.default_pids < 512:
        raise InvalidArgument("must be at least 512: gVisor's own threads count against it", field="default_pids")
    _validate_limits(s)


def _validate_limits(s: Settings) -> None:
    rates = (
        "session_requests_per_second",
        "session_request_burst",
        "session_tunnels_per_second",
        "session_tunnel_burst",
    )
    for key in ("session_max_connections", *rates):
        if getattr(s, key) < 1:
            raise InvalidArgument("must be at least 1", field=key)
    if s.connection_buffer_bytes < 1024:
        raise InvalidArgument("must be at least 1024", field="connection_buffer_bytes")
    for key in ("egress_max_connections", "egress_max_pending_requests", "egress_max_requests"):
        if getattr(s, key) <= s.session_max_connections:
            raise InvalidArgument("must be above session_max_connections, or one session could take it all", field=key)
    if s.egress_max_retries < 0:
        raise InvalidArgument("must not be negative", field="egress_max_retries")
    if s.envoy_max_downstream_connections and s.envoy_max_downstream_connections < s.session_max_connections:
        raise InvalidArgument("must be 0 (automatic) or at least session_max_connections",
                              field="envoy_max_downstream_connections")  # fmt: skip
    if s.envoy_max_heap_bytes and s.envoy_max_heap_bytes < 1 << 20:
        raise InvalidArgument("must be 0 (automatic) or at least 1 MiB", field="envoy_max_heap_bytes")


def split_addr(addr: str, key: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"{addr!r} is not HOST:PORT", field=key)
    return host, int(port)
