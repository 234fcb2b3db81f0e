"""The SDK's typed values: frozen dataclasses, built from the gRPC messages and the admin API's JSON."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from sandgate.errors import InvalidArgument


class State(enum.Enum):
    PENDING = "PENDING"
    READY = "READY"
    ENDED = "ENDED"
    FAILED = "FAILED"
    UNSPECIFIED = "STATE_UNSPECIFIED"


@dataclass(frozen=True)
class EgressRule:
    """One allowed destination: an exact host or `*.wildcard`; no ports means 443 and 80; no methods (paths) means
    all. `inspect`: its HTTPS is decrypted and each request decided; `credential`: a stored secret injected there."""

    host: str
    ports: tuple[int, ...] = ()
    methods: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    inspect: bool = False
    credential: str = ""

    @classmethod
    def parse(cls, text: str) -> EgressRule:
        """`HOST[:PORT[,PORT...]]`, as the CLI's `--allow`: `pypi.org`, `*.github.com:443`, `api.test:80,8080`."""
        host, _, ports = text.partition(":")
        try:
            return cls(host, tuple(int(p) for p in ports.split(",") if p))
        except ValueError:
            raise InvalidArgument(f"{text!r}: ports must be numbers, as in pypi.org:443", field="allow") from None

    def to_pb(self) -> pb.EgressRule:
        return pb.EgressRule(
            host=self.host, ports=list(self.ports), methods=list(self.methods), paths=list(self.paths),
            inspect=self.inspect, credential=self.credential,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "ports": list(self.ports), "methods": list(self.methods)}
        inspection = {"paths": list(self.paths), "inspect": self.inspect, "credential": self.credential}
        return {**out, **{k: v for k, v in inspection.items() if v}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EgressRule:
        return cls(
            str(data["host"]), tuple(data.get("ports", ())), tuple(data.get("methods", ())),
            tuple(data.get("paths", ())), bool(data.get("inspect", False)), str(data.get("credential", "")),
        )  # fmt: skip

    @classmethod
    def from_pb(cls, r: pb.EgressRule) -> EgressRule:
        return cls(r.host, tuple(r.ports), tuple(r.methods), tuple(r.paths), r.inspect, r.credential)


@dataclass(frozen=True)
class Limits:
    """Resource limits; 0 means the service's default."""

    memory_mb: int = 0
    cpus: float = 0.0
    pids: int = 0


@dataclass(frozen=True)
class SessionInfo:
    """A session as the service reports it. `token` is set only on the value `create` returns."""

    id: str
    state: State
    created_at: datetime | None
    expires_at: datetime | None
    egress: tuple[EgressRule, ...]
    limits: Limits
    labels: Mapping[str, str]
    proxy_url: str
    image: str
    report_only: bool
    idle_timeout_seconds: int
    failure_reason: str = ""
    token: str = field(default="", repr=False)

    @classmethod
    def from_pb(cls, s: pb.Session) -> SessionInfo:
        return cls(
            id=s.id,
            state=State(pb.State.Name(s.state)),
            created_at=_time(s, "created_at"),
            expires_at=_time(s, "expires_at"),
            egress=tuple(EgressRule.from_pb(r) for r in s.egress),
            limits=Limits(s.limits.memory_mb, s.limits.cpus, s.limits.pids),
            labels=dict(s.labels),
            proxy_url=s.proxy_url,
            image=s.image,
            report_only=s.report_only,
            idle_timeout_seconds=s.idle_timeout_seconds,
            failure_reason=s.failure_reason,
            token=s.token,
        )


def _time(message: pb.Session, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Output:
    """A piece of a command's output: `stream` is "stdout" or "stderr" (on a PTY, always "stdout")."""

    stream: str
    data: bytes


@dataclass(frozen=True)
class ExecResult:
    """A finished command: its exit code (124: timed out; 128+N: killed by signal N) and its output."""

    exit_code: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """stdout, decoded as UTF-8 (invalid bytes replaced)."""
        return self.stdout.decode(errors="replace")


@dataclass(frozen=True)
class EgressChange:
    """The rules in force after a change, and whether every Envoy had applied it when the call returned."""

    session_id: str
    egress: tuple[EgressRule, ...]
    applied: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EgressChange:
        rules = tuple(EgressRule.from_json(r) for r in data.get("egress", ()))
        return cls(str(data.get("session_id", "")), rules, bool(data.get("applied", False)))


@dataclass(frozen=True)
class Decision:
    """One egress decision (or lifecycle event) from the audit log; `time` is seconds since the epoch."""

    id: int
    time: float
    session_id: str
    method: str
    host: str
    port: int
    verdict: str
    reason: str
    response_code: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    duration_ms: float = 0.0
    source: str = ""
    stream_id: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


def rules_from(allow: Sequence[str], egress: Sequence[EgressRule]) -> list[EgressRule]:
    """`allow` strings (see `EgressRule.parse`) and `egress` rules, in that order."""
    return [EgressRule.parse(text) for text in allow] + list(egress)
