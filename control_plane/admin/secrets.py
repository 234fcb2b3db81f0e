"""Admin routes for secrets: store (write-only), list, read the metadata of, and delete the credentials that
inspected rules inject. No response model holds a value (`models.Secret`)."""

from __future__ import annotations

from aiohttp import web

from control_plane.admin import models as m
from control_plane.admin.http import read_body, read_path, read_query, respond
from control_plane.admin.spec import Operation
from control_plane.credentials.service import SecretService


class SecretRoutes:
    def __init__(self, service: SecretService) -> None:
        self._service = service

    async def list(self, request: web.Request) -> web.Response:
        """GET /v1/secrets: every stored secret's metadata and placeholder."""
        secrets = [s.to_dict() for s in self._service.vault.all()]
        return respond(m.Secrets.model_validate({"secrets": secrets}))

    async def get(self, request: web.Request) -> web.Response:
        """GET /v1/secrets/{name}: one secret's metadata; 404 if none."""
        name = read_path(request, "name", m.SECRET_NAME)
        return respond(m.Secret.model_validate(self._service.vault.get(name).to_dict()))

    async def put(self, request: web.Request) -> web.Response:
        """PUT /v1/secrets/{name}[?wait=applied]: store or replace; the sessions that use it get it live."""
        name = read_path(request, "name", m.SECRET_NAME)
        query = read_query(request, m.WriteQuery)
        wait = query.timeout if query.wait else None
        body = await read_body(request, m.SecretBody)
        secret = await self._service.put(name, body.model_dump(), wait)
        return respond(m.Secret.model_validate({**secret.to_dict(), "applied": wait is not None}))

    async def delete(self, request: web.Request) -> web.Response:
        """DELETE /v1/secrets/{name}: 404 if none, 409 while a rule names it."""
        await self._service.delete(read_path(request, "name", m.SECRET_NAME))
        return web.Response(status=204)


def secret_operations(service: SecretService) -> tuple[Operation, ...]:
    r = SecretRoutes(service)
    name = {"name": m.SECRET_NAME}
    return (
        Operation("GET", "/v1/secrets", r.list, "Stored secrets: metadata and placeholders, never values",
                  m.Secrets, errors=(401,)),
        Operation("GET", "/v1/secrets/{name}", r.get, "A secret's metadata and placeholder (never its value)",
                  m.Secret, path_params=name),
        Operation("PUT", "/v1/secrets/{name}", r.put, "Store or replace a secret (write-only); the sessions "
                  "whose rules name it get it on their next request", m.Secret, body=m.SecretBody,
                  query=m.WriteQuery, errors=(400, 401, 413, 502, 504), path_params=name),
        Operation("DELETE", "/v1/secrets/{name}", r.delete, "Delete a secret that no rule names", None, 204,
                  errors=(400, 401, 404, 409), path_params=name),
    )  # fmt: skip
