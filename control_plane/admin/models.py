"""The admin API's request and response bodies as pydantic models. Requests are validated by these models and
/openapi.json is generated from the same models, so the published constraints are the enforced ones.

The request models depend on the configured rule limits (`RuleLimits`): `request_models(limits)` builds them.
What no JSON Schema can say (the Public Suffix List, how many Envoy route domains a rule set expands into) is
checked by the domain after the model, and answered 400 with the field named.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter

from control_plane.admin.hosts import DENY_HOST_PATTERN, MAX_HOST_LENGTH, rule_host_pattern
from control_plane.domain.rules import RuleLimits

CLOSED = ConfigDict(extra="forbid")
Method = Literal["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"]


def _json_integer(value: object) -> object:
    """A JSON integer: `443` or `443.0`, never `true` or `"443"` (what JSON Schema's "integer" means)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a whole number")
    return int(value)


Port = Annotated[int, Interval(ge=1, le=65535), BeforeValidator(_json_integer)]  # constraints first: see the schema
Verdict = Literal["allow", "deny", "would_deny", "error", "event"]  # event: a sandbox died (docs/SECURITY.md)
SESSION_ID = TypeAdapter(Annotated[str, Field(pattern=r"^s-[0-9a-f]{16}$", description="s- and 16 hex digits")])
HOST_DOC = (
    "An exact name (lower case; an internationalized name in its xn-- form), `*.` and a name of two labels or "
    "more (subdomains only), an IP, or a CIDR range. A public suffix or a wildcard over one is refused (400) "
    "unless the service runs with allow_broad_wildcards."
)


@dataclass(frozen=True)
class RequestModels:
    """The request bodies and the host path parameter under one set of rule limits."""

    rule: type[BaseModel]
    rules: type[BaseModel]
    policy: type[BaseModel]
    host: TypeAdapter[str]  # a rule host, also the `{host}` path parameter


@functools.cache
def request_models(limits: RuleLimits) -> RequestModels:
    """The request models whose bounds (rules, ports, CIDR size) are the configured `limits`."""
    pattern = rule_host_pattern(limits.max_cidr_addresses)
    host = Annotated[str, Field(min_length=1, max_length=MAX_HOST_LENGTH, pattern=pattern, description=HOST_DOC)]

    class Rule(BaseModel):
        """One allowed destination."""

        model_config = CLOSED
        host: host
        ports: list[Port] = Field(
            default=[], max_length=limits.max_ports_per_rule, description="empty means 80 and 443"
        )
        methods: list[Method] = Field(default=[], description="plain HTTP only; empty means all")

    rule_list = Annotated[list[Rule], Field(max_length=limits.max_rules)]
    deny_host = Annotated[str, StringConstraints(min_length=1, max_length=MAX_HOST_LENGTH, pattern=DENY_HOST_PATTERN)]

    class RulesBody(BaseModel):
        """A session's whole rule set, replaced atomically."""

        model_config = CLOSED
        egress: rule_list

    class PolicyBody(BaseModel):
        """The global policy: default rules of new sessions, and names no session may reach."""

        model_config = CLOSED
        default_egress: rule_list = []
        deny: Annotated[list[deny_host], Field(max_length=limits.max_rules)] = []

    return RequestModels(Rule, RulesBody, PolicyBody, TypeAdapter(host))


class WriteQuery(BaseModel):
    """The query of every write: `?wait=applied[&timeout=S]`."""

    model_config = ConfigDict(extra="ignore")
    wait: Literal["applied"] | None = Field(
        default=None, description="answer only once every connected Envoy has ACKed the change (504 on timeout)"
    )
    timeout: float = Field(default=10.0, ge=0.05, le=60, description="with wait=applied: seconds to wait")


class DecisionsQuery(BaseModel):
    """Filters of the decision log."""

    model_config = ConfigDict(extra="ignore")
    session_id: str = Field(default="", description="only this session")
    verdict: Verdict | None = None
    limit: int = Field(default=100, ge=1, le=10000, description="at most this many, newest first")


class RuleOut(BaseModel):
    host: str
    ports: list[int]
    methods: list[str]


class Rules(BaseModel):
    """A session's rules after a read or a write; `applied`: every Envoy ACKed it (`?wait=applied`)."""

    session_id: str | None = None
    egress: list[RuleOut]
    applied: bool | None = None


class Policy(BaseModel):
    """The global policy; `applied` is set on a write."""

    default_egress: list[RuleOut]
    deny: list[str]
    applied: bool | None = None


class SessionLimits(BaseModel):
    memory_mb: int
    cpus: float
    pids: int


class Session(BaseModel):
    id: str
    state: Literal["PENDING", "READY", "ENDED", "FAILED"]
    image: str
    created_at: str = Field(description="RFC 3339, UTC")
    expires_at: str = Field(description="RFC 3339, UTC")
    egress: list[RuleOut]
    limits: SessionLimits
    labels: dict[str, str]
    report_only: bool
    failure_reason: str
    on_unlisted: Literal["DENY", "ASK"] = Field(
        default="DENY", description="ASK: a request no rule covers is held for an operator's approval"
    )


class Sessions(BaseModel):
    sessions: list[Session]


class Decision(BaseModel):
    id: int
    time: float = Field(description="seconds since the epoch")
    session_id: str
    method: str
    host: str
    port: int
    verdict: Verdict
    reason: str
    response_code: int
    bytes_sent: int
    bytes_received: int
    duration_ms: float
    source: str
    stream_id: str
    decided_by: str = Field(default="", description="who decided an approval: admin, or timeout")


class Decisions(BaseModel):
    decisions: list[Decision]


class ApprovalsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    session_id: str = Field(default="", description="only this session's")


class ApprovalDecision(BaseModel):
    """An operator's answer to an approval."""

    model_config = CLOSED
    decision: Literal["allow_once", "allow_session", "deny"]


class Approval(BaseModel):
    """A destination that held requests wait on (kind `request`), or a rule a sandbox proposed (`proposal`)."""

    id: str
    session_id: str
    kind: Literal["request", "proposal"]
    host: str
    port: int = Field(description="a request's port; 0 for a proposal (see rule)")
    rule: RuleOut = Field(description="what allow_session adds")
    method: str = Field(description="the first held request's method")
    reason: str = Field(description="a proposal's reason, as the sandbox wrote it: untrusted text")
    state: Literal["pending", "deciding", "allowed_once", "allowed_session", "denied", "timed_out"]
    decided_by: str
    held: int = Field(description="requests held on it so far")
    created_at: float = Field(description="seconds since the epoch")
    expires_at: float = Field(description="seconds since the epoch; 0: waits for an operator or the session's end")


class Approvals(BaseModel):
    approvals: list[Approval]


class SigningKeys(BaseModel):
    signing_key: str = Field(description="the key id that signs new tokens")
    verifying_keys: list[str] = Field(description="the key ids Envoy accepts")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    envoy_connected: bool
    config_acked: bool


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class Error(BaseModel):
    """Every error: `{"error": {"code", "message", "field"}}`."""

    error: ErrorDetail
