"""The admin API's request and response bodies as pydantic models. Requests are validated by these models and
/openapi.json is generated from the same models, so the published constraints are the enforced ones.

The request models depend on the configured rule limits (`RuleLimits`): `request_models(limits)` builds them.
What no JSON Schema can say (the Public Suffix List, how many Envoy route domains a rule set expands into) is
checked by the domain after the model, and answered 400 with the field named.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints, TypeAdapter
from pydantic.config import JsonDict

from control_plane.admin.hosts import DENY_HOST_PATTERN, INSPECT_HOST_PATTERN, MAX_HOST_LENGTH, rule_host_pattern
from control_plane.credentials.secret import HEADER_NAME, MAX_VALUE_CHARS, RESERVED_HEADERS
from control_plane.domain.paths import MAX_PATH_LENGTH, MAX_PATHS
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
SECRET_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
SECRET_NAME = TypeAdapter(Annotated[str, Field(pattern=SECRET_NAME_PATTERN, description="1-64 of A-Z a-z 0-9 _ . -")])
# A path glob (domain/paths.py): '/'-separated segments of URL path characters; `*` one segment, `**` any
# depth, never `***`; no `.` or `..` segment (requests are matched once normalized).
_C = r"[A-Za-z0-9\-_~!$&'()+,;=:@%]"
_SEGMENT = rf"\.*(?:{_C}(?:\*{{0,2}}[.]|\*{{0,2}}{_C})*\*{{0,2}}|\*{{1,2}}(?:(?:[.]|{_C})\*{{0,2}})*)|\.{{3,}}"
PATH_GLOB_PATTERN = rf"^(?:/(?:{_SEGMENT})?)+$"
PathGlob = Annotated[str, StringConstraints(max_length=MAX_PATH_LENGTH, pattern=PATH_GLOB_PATTERN)]
# What the domain checks across a rule's fields (rules.check_inspectable), stated for the published schema.
_RULE_CROSS_FIELDS: JsonDict = {
    "allOf": [
        {
            "if": {"properties": {"credential": {"minLength": 1}}, "required": ["credential"]},
            "then": {"properties": {"inspect": {"const": True}}, "required": ["inspect"]},
        },
        {
            "if": {"properties": {"inspect": {"const": True}}, "required": ["inspect"]},
            "then": {"properties": {"host": {"pattern": INSPECT_HOST_PATTERN}}},
        },
    ]
}
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

        model_config = ConfigDict(extra="forbid", json_schema_extra=_RULE_CROSS_FIELDS)
        host: host
        ports: list[Port] = Field(
            default=[], max_length=limits.max_ports_per_rule, description="empty means 80 and 443"
        )
        methods: list[Method] = Field(
            default=[],
            description="plain HTTP, and inspected HTTPS; empty means all (a CONNECT to a rule "
            "that limits methods or paths without inspect is refused: tunnel-not-inspectable)",
        )
        paths: list[PathGlob] = Field(
            default=[],
            max_length=MAX_PATHS,
            description="path globs (`/repos/**`, `/simple/*`) as for methods; empty means all",
        )
        inspect: StrictBool = Field(
            default=False,
            description="decrypt this host's HTTPS with a certificate from the session's own CA "
            "and decide each request; needs an exact host name",
        )
        credential: str = Field(
            default="",
            pattern=r"^(?:[A-Za-z0-9_.-]{1,64})?$",
            description="the name of a stored secret "
            "injected on inspected requests (needs inspect; 409 if no such secret)",
        )

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
    paths: list[str] = []
    inspect: bool = False
    credential: str = Field(default="", description="a secret's name, never its value")


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
    path: str = Field(default="", description="the request's path without its query (none for a tunnel)")
    credential: str = Field(default="", description="the name of the secret Envoy injected, never its value")


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


# A header a credential may set: an RFC 9110 token, none of the reserved ones (any case).
_RESERVED_HEADER = "|".join("".join(f"[{c.upper()}{c}]" if c.isalpha() else f"\\{c}" if c == "." else c
                                    for c in name) for name in sorted(RESERVED_HEADERS))  # fmt: skip


class SecretBody(BaseModel):
    """A secret to store (or replace). The value is write-only: no response ever holds it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=lambda schema: _refuse_reserved(schema))
    value: str = Field(
        min_length=1, max_length=MAX_VALUE_CHARS, pattern=r"^[^\r\n\x00]+$", json_schema_extra={"writeOnly": True}
    )
    header: str = Field(
        default="Authorization",
        pattern=f"^{HEADER_NAME.pattern}$",
        description="the request header Envoy sets (not Host, Connection and the like)",
    )
    format: str = Field(
        default="{value}",
        pattern=r"^[^\r\n\x00]*\{value\}[^\r\n\x00]*$",
        description="the header's value, `{value}` standing for the secret: e.g. `Bearer {value}`",
    )


def _refuse_reserved(schema: dict[str, Any]) -> None:
    schema["properties"]["header"]["not"] = {"pattern": f"^(?:{_RESERVED_HEADER})$"}


class Secret(BaseModel):
    """A stored secret: everything but its value. `applied` is set on a write."""

    name: str
    header: str
    format: str
    created_at: str = Field(description="RFC 3339, UTC")
    placeholder: str = Field(description="what a client may hold instead of the value; swapped on the bound host only")
    applied: bool | None = None


class Secrets(BaseModel):
    secrets: list[Secret]


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
