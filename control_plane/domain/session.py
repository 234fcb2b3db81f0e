"""The session: one sandbox, its rules and its lifetime. Pure: no I/O."""

from __future__ import annotations

import enum
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from control_plane.domain.rules import EgressRule
from control_plane.errors import InvalidArgument


class OnUnlisted(enum.StrEnum):
    """What a request to a destination no rule covers gets: a 403 at once, or an operator's decision."""

    DENY = "DENY"
    ASK = "ASK"


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
    """What an operator allows a session to ask for (settings `max_memory_mb`, `max_cpus`, `max_pids`)."""

    max_memory_mb: int = 8192
    max_cpus: float = 2.0
    min_pids: int = 512  # gVisor's own host threads count against the pids cgroup
    max_pids: int = 4096


@dataclass(frozen=True)
class MetadataLimits:
    """How much labels and environment one session may carry (settings of the same names).

    Labels travel in every ListSessions page and env in every container start and Exec, so both are
    bounded: a page of sessions fits a gRPC message, and the kernel takes the environment (ARG_MAX)."""

    max_labels: int = 64
    max_labels_bytes: int = 16 << 10  # keys and values, UTF-8
    max_env_vars: int = 128
    max_env_bytes: int = 64 << 10  # NAME=value entries, UTF-8


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
    on_unlisted: OnUnlisted = OnUnlisted.DENY

    def is_over(self, now: float, last_active: float) -> str:
        """Why the session should end now ("expired", "idle"), or "".

        Never while PENDING: its CreateSession owns it until it is READY or FAILED (ended part-way, the
        create answered a misleading "Envoy has not yet applied"); a TTL that passed meanwhile ends it at
        the next check after that."""
        if self.state == State.PENDING:
            return ""
        if self.expires_at <= now:
            return "expired"
        if self.idle_timeout_s and now - last_active >= self.idle_timeout_s:
            return "idle"
        return ""

    def with_egress(self, egress: tuple[EgressRule, ...]) -> Session:
        return replace(self, egress=egress)


_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")
MAX_LABEL_VALUE_BYTES = 256
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENV_ENTRY_BYTES = (128 << 10) - 1  # Linux takes at most 128 KiB per NAME=value string (MAX_ARG_STRLEN)
RESERVED_ENV = frozenset(
    {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy", "SANDGATE_SESSION_ID"}
)
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}$")  # a docker reference: [registry/]name[:tag][@digest]


def new_session_id() -> str:
    return "s-" + secrets.token_hex(8)


def validate_on_unlisted(value: str) -> OnUnlisted:
    """`DENY` (also for ""), or `ASK`; InvalidArgument naming `on_unlisted` otherwise."""
    try:
        return OnUnlisted(value.upper() or OnUnlisted.DENY)
    except ValueError:
        raise InvalidArgument(f"must be DENY or ASK, got {value!r}", field="on_unlisted") from None


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


def validate_labels(labels: Mapping[str, str], limits: MetadataLimits = MetadataLimits()) -> dict[str, str]:
    """Keys 1-63 of [A-Za-z0-9_.-/]; values at most 256 bytes without control characters; at most
    `limits.max_labels` of them, `limits.max_labels_bytes` in all. InvalidArgument naming `labels`."""
    check_label_count(len(labels), limits)
    total = 0
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                f"label key {_preview(key)} must be 1-63 characters of [A-Za-z0-9_.-/]", field="labels"
            )
        size = len(value.encode())
        if size > MAX_LABEL_VALUE_BYTES or not value.isprintable():
            raise InvalidArgument(
                f"the value of label {key!r} must be at most {MAX_LABEL_VALUE_BYTES} bytes of printable text",
                field="labels",
            )
        total += len(key) + size
    if total > limits.max_labels_bytes:
        raise InvalidArgument(
            f"labels hold {total} bytes; at most {limits.max_labels_bytes} (max_labels_bytes)", field="labels"
        )
    return dict(labels)


def validate_env(
    env: Mapping[str, str], field_name: str = "env", limits: MetadataLimits = MetadataLimits()
) -> dict[str, str]:
    """Valid variable names, none Sandgate sets itself, no NUL; at most `limits.max_env_vars` variables
    and `limits.max_env_bytes` in all (NAME=value), each under the kernel's 128 KiB. Errors name `field_name`."""
    check_env_count(len(env), field_name, limits)
    total = 0
    for key, value in env.items():
        if not _ENV_KEY.fullmatch(key):
            raise InvalidArgument(f"{_preview(key)} is not a valid environment variable name", field=field_name)
        if key in RESERVED_ENV:
            raise InvalidArgument(f"{key} is set by Sandgate and cannot be overridden", field=field_name)
        if "\0" in value:
            raise InvalidArgument(f"value of {key} contains a NUL byte", field=field_name)
        entry = len(key) + 1 + len(value.encode())
        if entry > MAX_ENV_ENTRY_BYTES:
            raise InvalidArgument(f"{key}=... is {entry} bytes; the kernel takes at most 128 KiB", field=field_name)
        total += entry
    if total > limits.max_env_bytes:
        raise InvalidArgument(
            f"the environment holds {total} bytes; at most {limits.max_env_bytes} (max_env_bytes)", field=field_name
        )
    return dict(env)


def check_label_count(count: int, limits: MetadataLimits = MetadataLimits(), field_name: str = "labels") -> None:
    """InvalidArgument naming `field_name` for more than `limits.max_labels` labels: checked before copying them."""
    if count > limits.max_labels:
        raise InvalidArgument(f"at most {limits.max_labels} labels (max_labels), got {count}", field=field_name)


def check_env_count(count: int, field_name: str = "env", limits: MetadataLimits = MetadataLimits()) -> None:
    """InvalidArgument naming `field_name` for more than `limits.max_env_vars` variables."""
    if count > limits.max_env_vars:
        raise InvalidArgument(f"at most {limits.max_env_vars} variables (max_env_vars), got {count}", field=field_name)


def validate_image(image: str, default: str) -> str:
    """A docker image reference (at most 255 characters), or `default` for none."""
    image = image.strip()
    if not image:
        return default
    if not _IMAGE.fullmatch(image):
        raise InvalidArgument(
            f"{_preview(image)} is not an image reference ([registry/]name[:tag][@digest])", field="image"
        )
    return image


def _preview(text: str) -> str:
    """`text` for an error message, cut short: a caller's mistake is not echoed back at any length."""
    return repr(text if len(text) <= 64 else text[:64] + "...")


def matches_labels(session: Session, selector: Mapping[str, str]) -> bool:
    return all(session.labels.get(k) == v for k, v in selector.items())
