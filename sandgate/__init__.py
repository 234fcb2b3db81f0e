"""The Sandgate Python SDK: one client for the sessions API (gRPC) and the admin API (HTTP).

    from sandgate import Sandgate

    with Sandgate.connect() as sg, sg.sessions.create(allow=["pypi.org"]) as session:
        print(session.run("echo hello").text)

`AsyncSandgate` is the same client for asyncio. See docs/SDK.md.
"""

from sandgate.aio import AsyncDecisions, AsyncEgress, AsyncSandgate, AsyncSession, AsyncSessions
from sandgate.discovery import Endpoints, discover
from sandgate.errors import (
    ConfigurationError,
    DeadlineExceeded,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    ResourceExhausted,
    SandgateError,
    Unauthenticated,
    Unavailable,
)
from sandgate.models import (
    Decision,
    EgressChange,
    EgressRule,
    ExecResult,
    Limits,
    Output,
    SessionInfo,
    State,
)
from sandgate.process import AsyncProcess
from sandgate.sync import Decisions, Egress, Process, Sandgate, Session, Sessions

__all__ = [
    "AsyncDecisions",
    "AsyncEgress",
    "AsyncProcess",
    "AsyncSandgate",
    "AsyncSession",
    "AsyncSessions",
    "ConfigurationError",
    "DeadlineExceeded",
    "Decision",
    "Decisions",
    "Egress",
    "EgressChange",
    "EgressRule",
    "Endpoints",
    "ExecResult",
    "FailedPrecondition",
    "InternalError",
    "InvalidArgument",
    "Limits",
    "NotFound",
    "Output",
    "PayloadTooLarge",
    "Process",
    "ResourceExhausted",
    "Sandgate",
    "SandgateError",
    "Session",
    "SessionInfo",
    "Sessions",
    "State",
    "Unauthenticated",
    "Unavailable",
    "discover",
]
