"""The SDK's exceptions: one class per kind of failure, whichever API (gRPC or admin HTTP) reported it.

Every exception carries the service's message, the `field` it names when the request was wrong, and
the transport's code (`grpc_code` or `http_status`). Catch `SandgateError` for all of them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import grpc

_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.*)$", re.DOTALL)  # the service's "field: message"


class SandgateError(Exception):
    """A failure the service reported, or one found before asking it (no token, no address)."""

    def __init__(self, message: str, *, field: str = "", grpc_code: str = "", http_status: int = 0) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.message, self.field = message, field
        self.grpc_code, self.http_status = grpc_code, http_status


class ConfigurationError(SandgateError):
    """The client could not find an address or a token: the message names the variable and file to set."""


class InvalidArgument(SandgateError):
    """The request was wrong; `field` names the part (`egress[0].host`, `argv`, `signal`, ...)."""


class PayloadTooLarge(InvalidArgument):
    """A file or body over the service's limit."""


class Unauthenticated(SandgateError):
    """A missing or wrong API or admin token."""


class NotFound(SandgateError):
    """No such session (or rule, or route)."""


class FailedPrecondition(SandgateError):
    """The session is not READY (ended, failed, still starting), or the change conflicts with its state."""


class ResourceExhausted(SandgateError):
    """The service is at capacity (sessions, execs); try again later."""


class Unavailable(SandgateError):
    """The service, its container runtime or Envoy could not be reached; try again."""


class DeadlineExceeded(SandgateError):
    """Something took longer than allowed: a change Envoy did not apply in time, or a slow file."""


class InternalError(SandgateError):
    """A bug in the service; its log says more."""


_BY_GRPC: dict[grpc.StatusCode, type[SandgateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: Unauthenticated,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}
_BY_HTTP: dict[int, type[SandgateError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: Unauthenticated,
    404: NotFound,
    409: FailedPrecondition,
    413: PayloadTooLarge,
    429: ResourceExhausted,
    503: Unavailable,
    504: DeadlineExceeded,
}


def from_grpc(exc: grpc.RpcError) -> SandgateError:
    """The typed exception for a failed gRPC call; the field is split off the service's message."""
    code: grpc.StatusCode = exc.code()
    details = str(exc.details() or code.name)
    field, message = "", details
    if code == grpc.StatusCode.INVALID_ARGUMENT and (found := _FIELD.match(details)):
        field, message = found.group(1), found.group(2)
    return _BY_GRPC.get(code, InternalError)(message, field=field, grpc_code=code.name)


def from_http(status: int, payload: bytes) -> SandgateError:
    """The typed exception for an admin API error body `{"error": {"code", "message", "field"}}`."""
    try:
        body: Any = json.loads(payload)["error"]
        message, field = str(body.get("message", "")), str(body.get("field") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        message, field = payload.decode(errors="replace")[:500] or f"HTTP {status}", ""
    return _BY_HTTP.get(status, InternalError)(message, field=field, http_status=status)
