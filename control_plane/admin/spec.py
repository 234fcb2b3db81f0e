"""The admin API's operations as data, and the OpenAPI 3.1 document generated from them and their models.

`build_admin_app` registers the same operations it documents here, and the handlers validate with the same
models the document publishes: the routes, the validation and /openapi.json cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from control_plane.admin.models import Error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REF = "#/components/schemas/{model}"
READ_ERRORS = (400, 401, 404)
# 409: the write is valid but the session's or the policy's current state cannot take it (rule limits);
# 502: Envoy refused it; 504: not ACKed in time
WRITE_ERRORS = (400, 401, 404, 409, 413, 502, 504)


@dataclass(frozen=True)
class Operation:
    """One route: its handler and everything the document says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel] | None = None  # None: no JSON body
    ok: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = READ_ERRORS
    public: bool = False  # no bearer token needed
    content_type: str = "application/json"
    path_params: Mapping[str, TypeAdapter[str]] = field(default_factory=dict)
    other: Mapping[int, type[BaseModel]] = field(default_factory=dict)  # statuses whose body is not an Error


def openapi(operations: Iterable[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `operations`, with every model under components/schemas."""
    operations = tuple(operations)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Sandgate admin API", "version": "1"},
        "components": {
            "schemas": _schemas(operations),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _schemas(operations: tuple[Operation, ...]) -> dict[str, Any]:
    models: dict[type[BaseModel], JsonSchemaMode] = {Error: "serialization"}
    for op in operations:
        if op.body:
            models[op.body] = "validation"
        for model in (op.response, *op.other.values()):
            if model:
                models[model] = "serialization"
    _, top = models_json_schema(list(models.items()), ref_template=REF)
    return dict(top.get("$defs", {}))


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "parameters": _parameters(op), "responses": _responses(op)}
    if op.public:
        out["security"] = []
    if op.body:
        schema = {"$ref": REF.format(model=op.body.__name__)}
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return out


def _responses(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if op.response:
        ok["content"] = {op.content_type: {"schema": {"$ref": REF.format(model=op.response.__name__)}}}
    elif op.content_type != "application/json":
        ok["content"] = {op.content_type: {"schema": {"type": "string"}}}
    error = {"description": "error", "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
    errors = op.errors if op.public else tuple(sorted({*op.errors, 401}))
    other = {str(code): _json(model) for code, model in op.other.items()}
    return {str(op.ok): ok, **{str(code): error for code in errors}, **other}


def _json(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"$ref": REF.format(model=model.__name__)}
    return {"description": model.__doc__ or "", "content": {"application/json": {"schema": schema}}}


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": op.path_params[name].json_schema()}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    return params + (_query(op.query) if op.query else [])


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each field of a query model as an optional parameter; a `None` default is absence, not a value."""
    properties = model.model_json_schema()["properties"]
    out = []
    for name, schema in properties.items():
        schema = _without_null(schema)
        description = schema.pop("description", "")
        schema.pop("title", None)
        out.append({"name": name, "in": "query", "required": False, "description": description, "schema": schema})
    return out


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) != 1:
        return dict(schema)
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**branches[0], **rest}
