"""Admin HTTP plumbing: bearer auth, the one mapping from errors to JSON, and strict JSON bodies."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from control_plane.errors import InvalidArgument, SandgateError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
MAX_BODY_BYTES = 64 * 1024
OPERATOR_KEY = "operator"  # who the request speaks for: the admin token's holder
ADMIN_OPERATOR = "admin"


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


def auth_middleware(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
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
        if exc.status >= 400:
            return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except Exception:
        log.exception("admin: unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the control plane log")


async def read_json(request: web.Request, fields: frozenset[str]) -> dict[str, Any]:
    """The body as a JSON object with only the given fields; InvalidArgument naming what is wrong."""
    if request.content_type != "application/json":
        raise InvalidArgument(f"expected application/json, got {request.content_type!r}", field="content-type")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"malformed JSON: {exc}", field="body") from exc
    if not isinstance(body, dict):
        raise InvalidArgument("expected a JSON object", field="body")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise InvalidArgument(f"unknown field {unknown[0]!r}; expected one of {sorted(fields)}", field=unknown[0])
    return body


def wants_applied(request: web.Request) -> float | None:
    """None for no waiting, else how long to wait for every Envoy's ACK (`?wait=applied[&timeout=S]`)."""
    wait = request.query.get("wait")
    if wait not in (None, "applied"):
        raise InvalidArgument(f"unknown value {wait!r}; the only one is 'applied'", field="wait")
    if wait is None:
        return None
    try:
        timeout = float(request.query.get("timeout", "10"))
    except ValueError:
        timeout = -1
    if not 0.05 <= timeout <= 60:
        raise InvalidArgument("must be a number of seconds from 0.05 to 60", field="timeout")
    return timeout
