"""Settings: read once at start from a TOML file and SANDGATE_<KEY> environment variables, strictly typed.

The model is pydantic-settings' `BaseSettings` in strict mode: a TOML value of the wrong type is an error,
never coerced (`manage_envoy = "flase"`, `max_sessions = 1.9`, a string where a list belongs). An
environment variable is text, so it is parsed as its key's type (`true`/`false`, an integer, a comma-separated
or JSON list), and text that is not one is an error too. Every error is an InvalidArgument naming the key.
`Settings(...)` itself reads nothing: only `load()` looks at the file and the environment.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, Strict, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from control_plane.channel.address import (
    MAX_SOCKET_PATH,
    ControlAddress,
    parse_control_address,
    socket_path,
    split_addr,
)
from control_plane.db.url import kind_of, sqlite_url
from control_plane.domain.capacity import Capacity
from control_plane.domain.destinations import DEFAULT_FORBIDDEN, parse_cidrs
from control_plane.domain.rules import RuleLimits
from control_plane.domain.session import LimitBounds, Limits, MetadataLimits
from control_plane.errors import InvalidArgument
from control_plane.sandbox import FORWARDER_BINARY

SESSION_DIR_EXAMPLE = "s-0123456789abcdef"  # every session id is this long
ENV_PREFIX = "SANDGATE_"

# TOML has no path type and its arrays are lists: these take a string and a list of strings.
FilePath = Annotated[Path, Strict(False)]
Strings = Annotated[tuple[Annotated[str, Strict()], ...], Strict(False)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, strict=True, frozen=True, extra="forbid"
    )

    state_dir: FilePath = Path("/var/lib/sandgate")
    grpc_addr: str = "127.0.0.1:50051"
    admin_addr: str = "127.0.0.1:8081"
    xds_addr: str = ""  # "": unix:<state_dir>/envoy/xds.sock
    database_url: str = ""  # "": sqlite://<state_dir>/sandgate.db; or postgresql://...
    api_token: str = ""
    admin_token: str = ""
    node_id: str = "sandgate-local"
    manage_envoy: bool = True
    envoy_binary: str = ""
    envoy_admin_socket: str = ""  # "": <state_dir>/envoy/admin.sock
    envoy_concurrency: int = 1
    xds_api: str = "DELTA_GRPC"
    default_image: str = "sandgate-sandbox:latest"
    container_runtime: str = "runsc-sandgate"
    forwarder_binary: FilePath = FORWARDER_BINARY  # the one built into the package
    forward_port: int = Field(3128, ge=1, le=65535)
    default_ttl_seconds: int = 3600
    max_ttl_seconds: int = 86400
    max_sessions: int = 500
    default_memory_mb: int = 512
    default_cpus: float = 1.0
    default_pids: int = 512
    max_memory_mb: int = 8192
    max_cpus: float = 2.0
    max_pids: int = 4096
    total_memory_mb: int = 0  # 0: the host's memory times memory_overcommit
    total_cpus: float = 0.0  # 0: the host's CPUs times cpu_overcommit
    memory_overcommit: float = 4.0
    cpu_overcommit: float = 32.0
    max_rules: int = 256
    max_ports_per_rule: int = 64
    max_cidr_addresses: int = 256
    max_route_domains: int = 8192
    max_labels: int = 64
    max_labels_bytes: int = 16384
    max_env_vars: int = 128
    max_env_bytes: int = 65536
    stream_idle_timeout_seconds: int = 3600
    dns_resolvers: Strings = ()
    dns_lookup_family: str = "V4_PREFERRED"
    apply_timeout_seconds: float = 10.0
    allow_broad_wildcards: bool = False
    forbidden_cidrs: Strings = DEFAULT_FORBIDDEN
    forbidden_exceptions: Strings = ()
    forbid_host_addresses: bool = True
    authz_every_connect: bool = False
    max_destinations: int = 8192
    decision_retention: int = 100_000
    decision_retention_per_session: int = 10_000
    warm_pool_size: int = 2
    end_sessions_on_shutdown: bool = False
    session_workers: int = 32
    session_workers_per_session: int = 4
    control_workers: int = 8
    audit_workers: int = 2
    docker_timeout_seconds: float = 60.0
    file_timeout_seconds: float = 60.0
    max_write_bytes: int = 16 << 20
    max_read_bytes: int = 64 << 20
    log_format: Literal["text", "json"] = "text"
    # on_unlisted ASK: how long a request to an unlisted destination waits for an operator, and how many
    # approvals (held destinations and proposals) one session may have open at once, and how many of its
    # requests may wait on them at once (each costs the control plane a gRPC call, about 34 KiB).
    approval_timeout_seconds: int = 30
    max_open_approvals: int = 16
    max_held_requests: int = 64
    # HTTPS inspection (docs/SECURITY.md, "Inspection"): upstream TLS is verified against the system's CAs
    # and these extra ones; sandboxes trust the system's CAs and their session's own.
    system_ca_file: str = "/etc/ssl/certs/ca-certificates.crt"
    upstream_ca_files: Strings = ()
    secrets_key_file: str = ""  # "": <state_dir>/keys/secrets.key (the key that encrypts stored secrets)

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the arguments: `load()` reads the file and the environment it is given, not os.environ."""
        return (init_settings,)

    @property
    def envoy_dir(self) -> Path:
        """What Envoy shares with the control plane (0700): its bootstrap, its admin socket, the xDS socket."""
        return self.state_dir / "envoy"

    @property
    def envoy_bootstrap_path(self) -> Path:
        """The bootstrap the control plane writes for its Envoy, managed or external (0600)."""
        return self.envoy_dir / "bootstrap.yaml"

    @property
    def sandbox_api_path(self) -> Path:
        """The control plane's HTTP server for sandboxes (http://sandgate.internal), for a local Envoy (0600)."""
        return self.envoy_dir / "sandbox-api.sock"

    @property
    def control_address(self) -> ControlAddress:
        """Where the control plane serves Envoy (xDS, ext_authz, access logs)."""
        return parse_control_address(self.xds_addr or f"unix:{self.envoy_dir / 'xds.sock'}", "xds_addr")

    @property
    def database(self) -> str:
        """The state database's URL: `database_url`, else the SQLite file in the state dir."""
        return self.database_url or sqlite_url(self.state_dir / "sandgate.db")

    @property
    def envoy_admin_path(self) -> Path:
        """Envoy's admin unix socket (0600)."""
        if not self.envoy_admin_socket:
            return self.envoy_dir / "admin.sock"
        return socket_path(self.envoy_admin_socket, "envoy_admin_socket")


def variable(key: str) -> str:
    """The environment variable that sets `key`: SANDGATE_<KEY>."""
    return ENV_PREFIX + key.upper()


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (TOML, optional), apply SANDGATE_<KEY> variables from `environ` (default os.environ) over it,
    validate. Raises InvalidArgument naming the key (`config` for a file that cannot be read)."""
    from_file = _file_values(path)
    from_env = _Environment(os.environ if environ is None else environ)()
    try:
        settings = Settings(**{**from_file, **from_env})
    except ValidationError as exc:
        raise _named(exc.errors()[0], from_env) from None
    _validate(settings)
    return settings


def _file_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise InvalidArgument(f"cannot read config file {path}: not a file", field="config")
    try:
        return TomlConfigSettingsSource(Settings, toml_file=path)()
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"cannot read config file {path}: {exc}", field="config") from exc


class _Environment(EnvSettingsSource):
    """SANDGATE_<KEY> variables from a given mapping. A list is comma-separated (`a:53,b:53`) or JSON."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(Settings)  # reads os.environ: replaced by `environ`, as case-insensitive as the names
        self.env_vars = {name.lower(): value for name, value in environ.items() if value}

    def prepare_field_value(self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool) -> Any:
        if not isinstance(value, str) or not _is_list(field):
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        if not value.lstrip().startswith("["):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        try:
            return json.loads(value)
        except ValueError as exc:
            raise InvalidArgument(f"{variable(field_name)} is not a JSON list: {exc}", field=field_name) from None


def _is_list(field: FieldInfo) -> bool:
    return getattr(field.annotation, "__origin__", None) is tuple


def _named(error: ErrorDetails, from_env: Mapping[str, Any]) -> InvalidArgument:
    """The first validation error as an InvalidArgument naming its key (`key[i]` for an item of a list)."""
    key, *rest = error["loc"]
    field = str(key) + "".join(f"[{part}]" for part in rest)
    if error["type"] == "extra_forbidden":
        return InvalidArgument(f"unknown setting {key!r}", field=str(key))
    where = f" (from {variable(str(key))})" if key in from_env else ""
    message = "Input should be a list of strings" if error["type"] == "tuple_type" else error["msg"]
    expected = message[0].lower() + message[1:]
    return InvalidArgument(f"{expected}, got {error['input']!r}{where}", field=field)


def _validate(s: Settings) -> None:
    for key in ("grpc_addr", "admin_addr"):
        split_addr(getattr(s, key), key)
    _ = s.control_address, s.envoy_admin_path  # each raises InvalidArgument naming its key
    kind_of(s.database)  # InvalidArgument naming database_url
    if len(str(s.state_dir / "sessions" / SESSION_DIR_EXAMPLE / "proxy.sock").encode()) > MAX_SOCKET_PATH:
        raise InvalidArgument(f"too long: its session sockets would pass {MAX_SOCKET_PATH} bytes", field="state_dir")
    if not 1 <= len(s.node_id) <= 64:
        raise InvalidArgument("must be 1 to 64 characters (the common name of Envoy's certificate)", field="node_id")
    for resolver in s.dns_resolvers:
        split_addr(resolver, "dns_resolvers")
    if not 1 <= s.default_ttl_seconds <= s.max_ttl_seconds:
        raise InvalidArgument("must be between 1 and max_ttl_seconds", field="default_ttl_seconds")
    if not 0 <= s.warm_pool_size <= 64:
        raise InvalidArgument("must be between 0 and 64", field="warm_pool_size")
    if not 16 <= s.max_destinations <= 1_000_000:
        raise InvalidArgument("must be between 16 and 1000000", field="max_destinations")
    if s.max_sessions < 1:
        raise InvalidArgument("must be at least 1", field="max_sessions")
    if s.xds_api not in {"GRPC", "DELTA_GRPC"}:
        raise InvalidArgument("must be GRPC (state of the world) or DELTA_GRPC", field="xds_api")
    parse_cidrs(s.forbidden_cidrs, "forbidden_cidrs")
    parse_cidrs(s.forbidden_exceptions, "forbidden_exceptions")
    if s.stream_idle_timeout_seconds < 0:
        raise InvalidArgument("must be 0 (none) or more seconds", field="stream_idle_timeout_seconds")
    if s.default_pids < 512:
        raise InvalidArgument("must be at least 512: gVisor's own threads count against it", field="default_pids")
    _validate_session_limits(s)
    _validate_sizes(s)
    _validate_workers(s)
    _validate_io(s)
    _validate_limits(s)
    _within(s, "approval_timeout_seconds", 1, 3600)
    _within(s, "max_open_approvals", 1, 1024)
    _within(s, "max_held_requests", 1, 65536)


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


def _within(s: Settings, key: str, low: float, high: float, why: str = "") -> None:
    if not low <= getattr(s, key) <= high:
        raise InvalidArgument(f"must be between {low:g} and {high:g}{why}", field=key)


def _validate_workers(s: Settings) -> None:
    _within(s, "session_workers", 2, 1024)
    _within(
        s,
        "session_workers_per_session",
        1,
        s.session_workers - 1,
        " (below session_workers: one session never takes them all)",
    )
    _within(s, "control_workers", 1, 256)
    _within(s, "audit_workers", 1, 64)


def _validate_io(s: Settings) -> None:
    _within(s, "docker_timeout_seconds", 1, 3600)
    _within(s, "file_timeout_seconds", 1, 3600)
    _within(s, "max_write_bytes", 1, 256 << 20, " (one gRPC message carries the whole file)")
    _within(s, "max_read_bytes", 1, 1 << 40)
    _within(s, "decision_retention", 1, 1 << 40)
    _within(s, "decision_retention_per_session", 1, s.decision_retention, " (at most decision_retention)")


# Upper bounds keep one session's record far below a gRPC message (ListSessions pages are cut at 3 MiB),
# and its routes quick to render and push.
_SIZE_RANGES: dict[str, tuple[int, int]] = {
    "max_rules": (1, 1024),
    "max_ports_per_rule": (1, 1024),
    "max_cidr_addresses": (1, 65536),
    "max_route_domains": (3, 100_000),
    "max_labels": (0, 1024),
    "max_labels_bytes": (0, 256 << 10),
    "max_env_vars": (0, 1024),
    "max_env_bytes": (0, 512 << 10),
}


def _validate_sizes(s: Settings) -> None:
    for key, (low, high) in _SIZE_RANGES.items():
        if not low <= getattr(s, key) <= high:
            raise InvalidArgument(f"must be between {low} and {high}", field=key)


def _validate_session_limits(s: Settings) -> None:
    """Defaults within the per-session maxima, and room in the totals for at least one default session."""
    checks = [
        ("max_memory_mb", s.max_memory_mb >= 64, "must be at least 64"),
        ("default_memory_mb", 64 <= s.default_memory_mb <= s.max_memory_mb, "must be between 64 and max_memory_mb"),
        ("max_cpus", s.max_cpus >= 0.05, "must be at least 0.05"),
        ("default_cpus", 0.05 <= s.default_cpus <= s.max_cpus, "must be between 0.05 and max_cpus"),
        ("max_pids", s.max_pids >= s.default_pids, "must be at least default_pids"),
        ("memory_overcommit", 0.1 <= s.memory_overcommit <= 1000, "must be between 0.1 and 1000"),
        ("cpu_overcommit", 0.1 <= s.cpu_overcommit <= 1000, "must be between 0.1 and 1000"),
        ("total_memory_mb", s.total_memory_mb == 0 or s.total_memory_mb >= s.default_memory_mb,
         "must be 0 (derived from the host) or at least default_memory_mb"),
        ("total_cpus", s.total_cpus == 0 or s.total_cpus >= s.default_cpus,
         "must be 0 (derived from the host) or at least default_cpus"),
    ]  # fmt: skip
    for key, ok, message in checks:
        if not ok:
            raise InvalidArgument(message, field=key)


@dataclass(frozen=True)
class HostSize:
    memory_mb: int
    cpus: int


def host_size() -> HostSize:
    """This machine's memory and CPUs: the sandboxes run on its dockerd."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    return HostSize(memory_mb=int(memory), cpus=os.cpu_count() or 1)


def capacity(s: Settings, host: HostSize) -> Capacity:
    """What all sessions together may hold: the totals set, or the host's size times the overcommit factors."""
    memory = s.total_memory_mb or int(host.memory_mb * s.memory_overcommit)
    cpus = s.total_cpus or round(host.cpus * s.cpu_overcommit, 3)
    return Capacity(s.max_sessions, max(memory, s.default_memory_mb), max(cpus, s.default_cpus))


def rule_limits(s: Settings) -> RuleLimits:
    return RuleLimits(s.max_rules, s.max_ports_per_rule, s.max_cidr_addresses, s.max_route_domains)


def metadata_limits(s: Settings) -> MetadataLimits:
    return MetadataLimits(s.max_labels, s.max_labels_bytes, s.max_env_vars, s.max_env_bytes)


def limit_bounds(s: Settings) -> LimitBounds:
    return LimitBounds(max_memory_mb=s.max_memory_mb, max_cpus=s.max_cpus, max_pids=s.max_pids)


def default_limits(s: Settings) -> Limits:
    return Limits(s.default_memory_mb, s.default_cpus, s.default_pids)
