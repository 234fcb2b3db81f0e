"""The OpenAPI 3.1 description of the admin API. A test checks it against the real routes."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_WAIT: dict[str, Any] = {
    "name": "wait",
    "in": "query",
    "required": False,
    "description": "`applied`: answer only once every connected Envoy has ACKed the change (504 on timeout)",
    "schema": {"type": "string", "enum": ["applied"]},
}
_TIMEOUT = {
    "name": "timeout",
    "in": "query",
    "required": False,
    "description": "with wait=applied: seconds to wait, 0.05 to 60 (default 10)",
    "schema": {"type": "number"},
}
_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"},
}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^s-[0-9a-f]{16}$"}}


def _op(summary: str, ok: str, schema: dict[str, Any] | None = None, params: list[Any] | None = None,
        body: str | None = None, errors: tuple[int, ...] = (400, 401, 404)) -> dict[str, Any]:  # fmt: skip
    responses: dict[str, Any] = {ok: {"description": "success"}}
    if schema:
        responses[ok]["content"] = {"application/json": {"schema": schema}}
    for code in errors:
        responses[str(code)] = {"description": "error", "content": {"application/json": {"schema": _ERROR}}}
    op: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": responses}
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_WRITE_ERRORS = (400, 401, 404, 409, 413, 504)
_W = [_WAIT, _TIMEOUT]
# fmt: off
_PATHS: dict[str, Any] = {
    "/v1/sessions": {"get": _op("List sessions", "200", {"type": "object"})},
    "/v1/sessions/{id}": {
        "get": _op("Get a session", "200", _ref("Session"), [_ID]),
        "delete": _op("End a session (idempotent)", "204", None, [_ID]),
    },
    "/v1/sessions/{id}/egress": {
        "get": _op("The rules in force", "200", _ref("Rules"), [_ID]),
        "put": _op("Replace all rules atomically", "200", _ref("Rules"), [_ID, *_W], "RulesBody", _WRITE_ERRORS),
        "post": _op("Add one rule", "201", _ref("Rules"), [_ID, *_W], "Rule", _WRITE_ERRORS),
    },
    "/v1/sessions/{id}/egress/{host}": {
        "delete": _op(
            "Remove the rule for a host",
            "200",
            _ref("Rules"),
            [_ID, {"name": "host", "in": "path", "required": True, "schema": {"type": "string"}}, _WAIT, _TIMEOUT],
            None,
            _WRITE_ERRORS,
        )
    },
    "/v1/policy": {
        "get": _op("The global policy", "200", _ref("Policy"), errors=(401,)),
        "put": _op("Replace the global policy", "200", _ref("Policy"), _W, "Policy", (400, 401, 413, 504)),
    },
    "/v1/decisions": {
        "get": _op(
            "Audit log of egress decisions, newest first; every request finished before the query is in it"
            " (the query waits 0.3 s for Envoy's last batch). Accept: text/event-stream follows them live",
            "200",
            {"type": "object"},
            [
                {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                for n in ("session_id", "verdict", "limit")
            ],
            errors=(400, 401),
        )
    },
    "/v1/signing-keys/rotate": {
        "post": _op("Rotate the token signing key; live tokens stay valid", "200", {"type": "object"}, _W,
                    errors=(401, 504)),
    },
    "/v1/secrets": {"get": _op("Stored secrets: metadata and placeholders, never values", "200", {"type": "object"},
                               errors=(401,))},
    "/v1/secrets/{name}": {
        "get": _op("A secret's metadata and placeholder (never its value)", "200", _ref("Secret"), [_NAME]),
        "put": _op("Store or replace a secret (write-only); its sessions get it on their next request", "200",
                   _ref("Secret"), [_NAME, *_W], "SecretBody", (400, 401, 413, 504)),
        "delete": _op("Delete a secret no rule names", "204", None, [_NAME], errors=(400, 401, 404, 409)),
    },
    "/healthz": {"get": _op("Alive", "200", errors=())},
    "/readyz": {"get": _op("Envoy connected and has ACKed the current config", "200", errors=(503,))},
    "/metrics": {"get": _op("Prometheus metrics", "200", errors=())},
    "/openapi.json": {"get": _op("This document", "200", errors=())},
}
# fmt: on

_RULE = {
    "type": "object",
    "required": ["host"],
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "description": "exact name, or *.suffix for subdomains only"},
        "ports": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
        "methods": {"type": "array", "items": {"type": "string"}, "description": "plain HTTP and inspected HTTPS"},
        "paths": {"type": "array", "items": {"type": "string"}, "description": "path globs: /repos/**, /simple/*"},
        "inspect": {"type": "boolean", "description": "decrypt this host's HTTPS and decide each request"},
        "credential": {"type": "string", "description": "a secret injected on inspected requests"},
    },
}


def _object(properties: dict[str, Any], closed: bool = True) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": not closed, "properties": properties}


_RULES = {"type": "array", "items": _RULE}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_ERROR_BODY = _object({"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}})
_SCHEMAS: dict[str, Any] = {
    "Rule": _RULE,
    "RulesBody": _object({"egress": _RULES}),
    "Rules": _object({"session_id": {"type": "string"}, "egress": _RULES, "applied": {"type": "boolean"}}),
    "Policy": _object({"default_egress": _RULES, "deny": _STRINGS}),
    "Session": _object(
        {k: {"type": "string"} for k in ("id", "state", "image", "created_at", "expires_at", "failure_reason")}, False
    ),
    "SecretBody": {
        **_object(
            {
                "value": {"type": "string", "writeOnly": True},
                "header": {"type": "string"},
                "format": {"type": "string", "description": "e.g. 'Bearer {value}'"},
            }
        ),
        "required": ["value"],
    },
    "Secret": _object(
        {k: {"type": "string"} for k in ("name", "header", "format", "placeholder", "created_at")}
        | {"applied": {"type": "boolean"}}
    ),
    "Error": _object({"error": {**_ERROR_BODY, "required": ["code", "message"]}}),
}


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sandgate admin API", "version": "1"},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": _PATHS,
    }
