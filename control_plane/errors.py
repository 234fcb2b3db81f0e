"""Expected outcomes that callers may handle, each mapped once to a gRPC code and an HTTP status.

Anything that is not a SandgateError is a bug: adapters log it and answer INTERNAL / 500.
"""

from __future__ import annotations


class SandgateError(Exception):
    """An expected failure with a message a person can act on."""

    grpc_code = "UNKNOWN"
    http_status = 500
    code = "error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgument(SandgateError):
    grpc_code = "INVALID_ARGUMENT"
    http_status = 400
    code = "invalid_argument"


class NotFound(SandgateError):
    grpc_code = "NOT_FOUND"
    http_status = 404
    code = "not_found"


class FailedPrecondition(SandgateError):
    grpc_code = "FAILED_PRECONDITION"
    http_status = 409
    code = "failed_precondition"


class CapacityExhausted(SandgateError):
    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 429
    code = "resource_exhausted"


class PayloadTooLarge(SandgateError):
    grpc_code = "INVALID_ARGUMENT"
    http_status = 413
    code = "payload_too_large"


class Unavailable(SandgateError):
    grpc_code = "UNAVAILABLE"
    http_status = 503
    code = "unavailable"


class DeadlineExceeded(SandgateError):
    """A call on a sandbox (ReadFile, WriteFile) took longer than its configured timeout."""

    grpc_code = "DEADLINE_EXCEEDED"
    http_status = 504
    code = "deadline_exceeded"


class NotApplied(SandgateError):
    """A change was stored but not every Envoy confirmed it in time."""

    grpc_code = "DEADLINE_EXCEEDED"
    http_status = 504
    code = "not_applied"


class Rejected(SandgateError):
    """Envoy NACKed the config that carries a change; the last good config stays in force."""

    grpc_code = "INTERNAL"
    http_status = 502
    code = "rejected_by_envoy"
