"""Admin HTTP plumbing: bearer auth, the one mapping from errors to JSON, and strict JSON bodies."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from control_plane.errors import InvalidArgument, SandgateError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
MAX_BODY_BYTES = 64 * 1024
OPERATOR_KEY = web.RequestKey("operator", str)  # who the request speaks for: the admin token's holder
ADMIN_OPERATOR = "admin"


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


def auth_middleware(token: str, open_paths: frozenset[str]) -> Any:
    """Every path but `open_paths` (the operations the spec declares public) needs the bearer token."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return error_response(401, "unauthenticated", "send 'Authorization: Bearer <admin token>'")
        request[OPERATOR_KEY] = ADMIN_OPERATOR
        return await handler(request)

    return check


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SandgateError as exc:
        return error_response(exc.http_status, exc.code, exc.message, exc.field)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "payload_too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        if "Allow" in exc.headers:  # 405: the methods this path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("admin: unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the control plane log")


async def read_body(request: web.Request, model: type[M]) -> M:
    """The JSON body validated by `model`; InvalidArgument naming the first bad field (`egress[1].host`)."""
    if request.content_type != "application/json":
        raise InvalidArgument(f"expected application/json, got {request.content_type!r}", field="content-type")
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        raise invalid(exc) from None


def read_query(request: web.Request, model: type[M]) -> M:
    """The query string validated by `model`; InvalidArgument naming the parameter."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise invalid(exc) from None


def read_path(request: web.Request, name: str, adapter: TypeAdapter[str], field: str = "") -> str:
    """One path parameter validated by `adapter`; InvalidArgument naming `field` (default: the parameter)."""
    try:
        return adapter.validate_python(request.match_info[name])
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidArgument(_message(error), field=field or name) from None


def invalid(exc: ValidationError) -> InvalidArgument:
    """The first validation error as InvalidArgument; the field is its path (`body` for the body as a whole)."""
    error = exc.errors()[0]
    return InvalidArgument(_message(error), field=field_path(error["loc"]) or "body")


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as the API names fields: `("egress", 1, "host")` is `egress[1].host`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch":
        return f"{error['input']!r} is not a valid host here: {error['ctx']['pattern']}"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"])


def respond(body: BaseModel, status: int = 200) -> web.Response:
    """A response model as JSON; unset optional fields are left out."""
    return web.json_response(body.model_dump(mode="json", exclude_none=True), status=status)
