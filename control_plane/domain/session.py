"""The session: one sandbox, its rules and its lifetime. Pure: no I/O."""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from control_plane.domain.rules import EgressRule
from control_plane.errors import InvalidArgument


class State(enum.StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    ENDED = "ENDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpus: float
    pids: int


@dataclass(frozen=True)
class LimitBounds:
    """What an operator allows a session to ask for."""

    max_memory_mb: int = 8192
    max_cpus: float = 2.0
    min_pids: int = 512  # gVisor's own host threads count against the pids cgroup
    max_pids: int = 4096


@dataclass(frozen=True)
class Session:
    id: str
    state: State
    node_id: str
    image: str
    created_at: float
    expires_at: float
    egress: tuple[EgressRule, ...]
    limits: Limits
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    container_id: str = ""
    token_id: str = ""
    report_only: bool = False
    idle_timeout_s: int = 0
    failure_reason: str = ""  # why a FAILED session failed, e.g. "sandbox-exited: exit code 137 (OOM killed)"

    def is_over(self, now: float, last_active: float) -> str:
        """Why the session should end now ("expired", "idle"), or ""."""
        if self.expires_at <= now:
            return "expired"
        if self.idle_timeout_s and now - last_active >= self.idle_timeout_s:
            return "idle"
        return ""

    def with_egress(self, egress: tuple[EgressRule, ...]) -> Session:
        return replace(self, egress=egress)


_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
RESERVED_ENV = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"})


def new_session_id() -> str:
    return "s-" + secrets.token_hex(8)


def validate_session_id(session_id: str, field_name: str = "session_id") -> str:
    if not re.fullmatch(r"s-[0-9a-f]{16}", session_id):
        raise InvalidArgument(f"{session_id!r} is not a session id (expected 's-' and 16 hex digits)", field=field_name)
    return session_id


def validate_ttl(ttl: int | None, default: int, maximum: int) -> int:
    if ttl is None:
        return default
    if not 1 <= ttl <= maximum:
        raise InvalidArgument(f"must be between 1 and {maximum} seconds, got {ttl}", field="ttl_seconds")
    return ttl


def validate_idle_timeout(idle: int, ttl: int) -> int:
    if idle < 0 or idle > ttl:
        raise InvalidArgument(
            f"must be between 0 (never) and the session's ttl ({ttl} s)", field="idle_timeout_seconds"
        )
    return idle


def validate_limits(memory_mb: int, cpus: float, pids: int, defaults: Limits, bounds: LimitBounds) -> Limits:
    """Zero means "the default"; anything else must lie within the operator's bounds."""
    limits = Limits(memory_mb or defaults.memory_mb, cpus or defaults.cpus, pids or defaults.pids)
    if not 64 <= limits.memory_mb <= bounds.max_memory_mb:
        raise InvalidArgument(f"must be between 64 and {bounds.max_memory_mb}", field="limits.memory_mb")
    if not 0.05 <= limits.cpus <= bounds.max_cpus:
        raise InvalidArgument(f"must be between 0.05 and {bounds.max_cpus}", field="limits.cpus")
    if not bounds.min_pids <= limits.pids <= bounds.max_pids:
        raise InvalidArgument(f"must be between {bounds.min_pids} and {bounds.max_pids}", field="limits.pids")
    return limits


def validate_labels(labels: Mapping[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise InvalidArgument(f"label key {key!r} must be 1-63 characters of [A-Za-z0-9_.-/]", field="labels")
        if len(value) > 256:
            raise InvalidArgument(f"label {key!r} is longer than 256 characters", field="labels")
    return dict(labels)


def validate_env(env: Mapping[str, str], field_name: str = "env") -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_KEY.match(key):
            raise InvalidArgument(f"{key!r} is not a valid environment variable name", field=field_name)
        if key in RESERVED_ENV:
            raise InvalidArgument(f"{key} is set by Sandgate and cannot be overridden", field=field_name)
        if "\0" in value:
            raise InvalidArgument(f"value of {key} contains a NUL byte", field=field_name)
    return dict(env)


def matches_labels(session: Session, selector: Mapping[str, str]) -> bool:
    return all(session.labels.get(k) == v for k, v in selector.items())
