"""Admin HTTP routes: parse, make one call, map the result. Errors become JSON in `http.error_middleware`."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from control_plane.admin import models as m
from control_plane.admin.approvals import approval_operations
from control_plane.admin.console import add_console_routes, open_console, origin_middleware
from control_plane.admin.http import (
    MAX_BODY_BYTES,
    auth_middleware,
    error_middleware,
    read_body,
    read_path,
    read_query,
    respond,
)
from control_plane.admin.secrets import secret_operations
from control_plane.admin.spec import WRITE_ERRORS, Operation, openapi
from control_plane.approvals.desk import ApprovalDesk
from control_plane.audit.decisions import DecisionLog
from control_plane.credentials.service import SecretService
from control_plane.domain.rules import DEFAULT_LIMITS
from control_plane.domain.session import Session
from control_plane.metrics import Metrics
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.manager import SessionManager
from control_plane.sessions.rotation import KeyRotation
from control_plane.xds.cache import SnapshotCache


@dataclass(frozen=True)
class AdminDeps:
    manager: SessionManager
    egress: EgressEditor
    decisions: DecisionLog
    cache: SnapshotCache
    metrics: Metrics
    node_id: str
    keys: KeyRotation
    approvals: ApprovalDesk
    secrets: SecretService


def session_json(s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "state": s.state.value,
        "image": s.image,
        "created_at": _iso(s.created_at),
        "expires_at": _iso(s.expires_at),
        "egress": [r.to_dict() for r in s.egress],
        "limits": {"memory_mb": s.limits.memory_mb, "cpus": s.limits.cpus, "pids": s.limits.pids},
        "labels": dict(s.labels),
        "report_only": s.report_only,
        "failure_reason": s.failure_reason,
        "on_unlisted": s.on_unlisted.value,
    }


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


class AdminRoutes:
    def __init__(self, deps: AdminDeps) -> None:
        self.d = deps
        # The request models carry the configured rule limits (the spec-only unit test has no editor: defaults).
        self.models = m.request_models(deps.egress.limits if deps.egress else DEFAULT_LIMITS)
        self.spec: dict[str, Any] = {}

    def _session_id(self, request: web.Request) -> str:
        return read_path(request, "id", m.SESSION_ID, field="session_id")  # the name the gRPC API uses too

    async def list_sessions(self, request: web.Request) -> web.Response:
        sessions = [session_json(s) for s in self.d.manager.registry.matching()]
        return respond(m.Sessions.model_validate({"sessions": sessions}))

    async def get_session(self, request: web.Request) -> web.Response:
        return respond(m.Session.model_validate(session_json(self.d.manager.registry.get(self._session_id(request)))))

    async def delete_session(self, request: web.Request) -> web.Response:
        await self.d.manager.delete(self._session_id(request))
        return web.Response(status=204)

    async def get_egress(self, request: web.Request) -> web.Response:
        rules = self.d.egress.rules(self._session_id(request))
        return respond(m.Rules.model_validate({"egress": [r.to_dict() for r in rules]}))

    async def put_egress(self, request: web.Request) -> web.Response:
        session_id, wait = self._session_id(request), _wait(request)
        body = await read_body(request, self.models.rules)
        session = await self.d.egress.replace(session_id, body.model_dump()["egress"], wait)
        return _rules_response(session, wait)

    async def post_egress(self, request: web.Request) -> web.Response:
        session_id, wait = self._session_id(request), _wait(request)
        body = await read_body(request, self.models.rule)
        session = await self.d.egress.add(session_id, body.model_dump(), wait)
        return _rules_response(session, wait, status=201)

    async def delete_egress(self, request: web.Request) -> web.Response:
        session_id, wait = self._session_id(request), _wait(request)
        host = read_path(request, "host", self.models.host)
        return _rules_response(await self.d.egress.remove(session_id, host, wait), wait)

    async def rotate_keys(self, request: web.Request) -> web.Response:
        return respond(m.SigningKeys.model_validate(await self.d.keys.rotate(_wait(request))))

    async def get_policy(self, request: web.Request) -> web.Response:
        return respond(m.Policy.model_validate(self.d.egress.policy().to_dict()))

    async def put_policy(self, request: web.Request) -> web.Response:
        wait = _wait(request)
        body = await read_body(request, self.models.policy)
        policy = await self.d.egress.put_policy(body.model_dump(), wait)
        return respond(m.Policy.model_validate({**policy.to_dict(), "applied": wait is not None}))

    async def decisions(self, request: web.Request) -> web.StreamResponse:
        query = read_query(request, m.DecisionsQuery)
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await self._stream_decisions(request, query)
        events = await self.d.decisions.query(query.session_id, query.verdict or "", query.limit)
        return respond(m.Decisions.model_validate({"decisions": [e.to_dict() for e in events]}))

    async def _stream_decisions(self, request: web.Request, query: m.DecisionsQuery) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        async for event in self.d.decisions.follow():
            if (query.session_id and event.session_id != query.session_id) or (
                query.verdict and event.verdict != query.verdict
            ):
                continue
            await response.write(f"id: {event.id}\nevent: decision\ndata: {json.dumps(event.to_dict())}\n\n".encode())
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return respond(m.Health(status="ok"))

    async def readyz(self, request: web.Request) -> web.Response:
        connected = bool(self.d.cache.streams(self.d.node_id))
        in_sync = self.d.cache.in_sync(self.d.node_id)
        body = m.Readiness(ready=in_sync, envoy_connected=connected, config_acked=in_sync)
        return respond(body, status=200 if in_sync else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.d.metrics.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.spec)


def _wait(request: web.Request) -> float | None:
    """None for no waiting, else how long to wait for every Envoy's ACK (`?wait=applied[&timeout=S]`)."""
    query = read_query(request, m.WriteQuery)
    return query.timeout if query.wait else None


def _rules_response(session: Session, applied: float | None, status: int = 200) -> web.Response:
    rules = [r.to_dict() for r in session.egress]
    return respond(
        m.Rules.model_validate({"session_id": session.id, "egress": rules, "applied": applied is not None}), status
    )


def operations(r: AdminRoutes) -> tuple[Operation, ...]:
    """Every admin route, as registered and as documented."""
    sid = {"id": m.SESSION_ID}
    rule = {**sid, "host": r.models.host}
    w = m.WriteQuery
    return (
        Operation("GET", "/v1/sessions", r.list_sessions, "List sessions", m.Sessions, errors=(400, 401)),
        Operation("GET", "/v1/sessions/{id}", r.get_session, "Get a session", m.Session, path_params=sid),
        Operation("DELETE", "/v1/sessions/{id}", r.delete_session, "End a session (idempotent)", None, 204,
                  path_params=sid),
        Operation("GET", "/v1/sessions/{id}/egress", r.get_egress, "The rules in force", m.Rules, path_params=sid),
        Operation("PUT", "/v1/sessions/{id}/egress", r.put_egress, "Replace all rules atomically", m.Rules,
                  body=r.models.rules, query=w, errors=WRITE_ERRORS, path_params=sid),
        Operation("POST", "/v1/sessions/{id}/egress", r.post_egress, "Add one rule", m.Rules, 201,
                  body=r.models.rule, query=w, errors=WRITE_ERRORS, path_params=sid),
        Operation("DELETE", "/v1/sessions/{id}/egress/{host}", r.delete_egress, "Remove the rule for a host",
                  m.Rules, query=w, errors=WRITE_ERRORS, path_params=rule),
        Operation("GET", "/v1/policy", r.get_policy, "The global policy", m.Policy, errors=(401,)),
        Operation("PUT", "/v1/policy", r.put_policy, "Replace the global policy", m.Policy,
                  body=r.models.policy, query=w, errors=(400, 401, 409, 413, 502, 504)),
        Operation("GET", "/v1/decisions", r.decisions, "Audit log of egress decisions, newest first; every "
                  "request finished before the query is in it (the query waits 0.3 s for Envoy's last batch). "
                  "Accept: text/event-stream follows them live", m.Decisions, query=m.DecisionsQuery,
                  errors=(400, 401)),
        Operation("POST", "/v1/signing-keys/rotate", r.rotate_keys, "Rotate the token signing key; live tokens "
                  "stay valid", m.SigningKeys, query=w, errors=(400, 401, 504)),
        Operation("GET", "/healthz", r.healthz, "Alive", m.Health, errors=(), public=True),
        Operation("GET", "/readyz", r.readyz, "Envoy connected and has ACKed the current config", m.Readiness,
                  errors=(), public=True, other={503: m.Readiness}),
        Operation("GET", "/metrics", r.metrics, "Prometheus metrics", errors=(), public=True,
                  content_type="text/plain"),
        Operation("GET", "/openapi.json", r.openapi, "This document", errors=(), public=True),
    )  # fmt: skip


def admin_operations(r: AdminRoutes) -> tuple[Operation, ...]:
    """Every route of the admin server: the core ones, the approvals' and the secrets'."""
    return (*operations(r), *approval_operations(r.d.approvals), *secret_operations(r.d.secrets))


def build_admin_app(deps: AdminDeps, admin_token: str) -> web.Application:
    routes = AdminRoutes(deps)
    ops = admin_operations(routes)
    open_paths = frozenset(op.path for op in ops if op.public)  # what the spec declares open is what is open
    auth = open_console(auth_middleware(admin_token, open_paths))
    app = web.Application(middlewares=[error_middleware, origin_middleware, auth], client_max_size=MAX_BODY_BYTES)
    for op in ops:
        app.router.add_route(op.method, op.path, op.handler)
    add_console_routes(app)
    routes.spec = openapi(ops)
    return app
