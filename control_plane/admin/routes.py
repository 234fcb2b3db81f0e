"""Admin HTTP routes: parse, make one call, map the result. Errors become JSON in `http.error_middleware`."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from control_plane.admin.http import MAX_BODY_BYTES, auth_middleware, error_middleware, read_json, wants_applied
from control_plane.admin.openapi import spec
from control_plane.audit.decisions import DecisionLog
from control_plane.credentials.service import SecretService
from control_plane.domain.session import Session
from control_plane.errors import InvalidArgument, Unavailable
from control_plane.metrics import Registry
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.manager import SessionManager
from control_plane.sessions.rotation import KeyRotation
from control_plane.xds.cache import SnapshotCache

SECRET_FIELDS = frozenset({"value", "header", "format"})
RULE_FIELDS = frozenset({"host", "ports", "methods", "paths", "inspect", "credential"})
VERDICTS = frozenset({"allow", "deny", "would_deny", "error", "event"})  # event: a sandbox died (docs/SECURITY.md)


@dataclass(frozen=True)
class AdminDeps:
    manager: SessionManager
    egress: EgressEditor
    decisions: DecisionLog
    cache: SnapshotCache
    metrics: Registry
    node_id: str
    keys: KeyRotation
    secrets: SecretService | None = None


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
    }


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


class AdminRoutes:
    def __init__(self, deps: AdminDeps) -> None:
        self.d = deps

    async def list_sessions(self, request: web.Request) -> web.Response:
        return web.json_response({"sessions": [session_json(s) for s in self.d.manager.registry.matching()]})

    async def get_session(self, request: web.Request) -> web.Response:
        return web.json_response(session_json(self.d.manager.registry.get(request.match_info["id"])))

    async def delete_session(self, request: web.Request) -> web.Response:
        await self.d.manager.delete(request.match_info["id"])
        return web.Response(status=204)

    async def get_egress(self, request: web.Request) -> web.Response:
        rules = self.d.egress.rules(request.match_info["id"])
        return web.json_response({"egress": [r.to_dict() for r in rules]})

    async def put_egress(self, request: web.Request) -> web.Response:
        wait = wants_applied(request)
        body = await read_json(request, frozenset({"egress"}))
        rules = body.get("egress")
        if not isinstance(rules, list):
            raise InvalidArgument("must be a list of rules", field="egress")
        session = await self.d.egress.replace(request.match_info["id"], rules, wait)
        return self._rules_response(session, wait)

    async def post_egress(self, request: web.Request) -> web.Response:
        wait = wants_applied(request)
        body = await read_json(request, RULE_FIELDS)
        session = await self.d.egress.add(request.match_info["id"], body, wait)
        return self._rules_response(session, wait, status=201)

    async def delete_egress(self, request: web.Request) -> web.Response:
        wait = wants_applied(request)
        session = await self.d.egress.remove(request.match_info["id"], request.match_info["host"], wait)
        return self._rules_response(session, wait)

    def _rules_response(self, session: Session, applied: float | None, status: int = 200) -> web.Response:
        body = {
            "session_id": session.id,
            "egress": [r.to_dict() for r in session.egress],
            "applied": applied is not None,
        }
        return web.json_response(body, status=status)

    async def put_secret(self, request: web.Request) -> web.Response:
        wait = wants_applied(request)
        body = await read_json(request, SECRET_FIELDS)
        secret = await self._secrets().put(request.match_info["name"], body, wait)
        return web.json_response({**secret.to_dict(), "applied": wait is not None})

    async def list_secrets(self, request: web.Request) -> web.Response:
        return web.json_response({"secrets": [s.to_dict() for s in self._secrets().vault.all()]})

    async def get_secret(self, request: web.Request) -> web.Response:
        return web.json_response(self._secrets().vault.get(request.match_info["name"]).to_dict())

    async def delete_secret(self, request: web.Request) -> web.Response:
        await self._secrets().delete(request.match_info["name"])
        return web.Response(status=204)

    def _secrets(self) -> SecretService:
        if self.d.secrets is None:
            raise Unavailable("this control plane keeps no secrets")
        return self.d.secrets

    async def rotate_keys(self, request: web.Request) -> web.Response:
        return web.json_response(await self.d.keys.rotate(wants_applied(request)))

    async def get_policy(self, request: web.Request) -> web.Response:
        return web.json_response(self.d.egress.policy().to_dict())

    async def put_policy(self, request: web.Request) -> web.Response:
        wait = wants_applied(request)
        body = await read_json(request, frozenset({"default_egress", "deny"}))
        policy = await self.d.egress.put_policy(body, wait)
        return web.json_response({**policy.to_dict(), "applied": wait is not None})

    async def decisions(self, request: web.Request) -> web.StreamResponse:
        session_id, verdict = request.query.get("session_id", ""), request.query.get("verdict", "")
        if verdict and verdict not in VERDICTS:
            raise InvalidArgument(f"must be one of {sorted(VERDICTS)}", field="verdict")
        limit_text = request.query.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10000:
            raise InvalidArgument("must be a whole number from 1 to 10000", field="limit")
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await self._stream_decisions(request, session_id, verdict)
        events = await self.d.decisions.query(session_id, verdict, int(limit_text))
        return web.json_response({"decisions": [e.to_dict() for e in events]})

    async def _stream_decisions(self, request: web.Request, session_id: str, verdict: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        async for event in self.d.decisions.follow():
            if (session_id and event.session_id != session_id) or (verdict and event.verdict != verdict):
                continue
            await response.write(f"id: {event.id}\nevent: decision\ndata: {json.dumps(event.to_dict())}\n\n".encode())
        return response

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        connected = bool(self.d.cache.streams(self.d.node_id))
        in_sync = self.d.cache.in_sync(self.d.node_id)
        body = {"ready": in_sync, "envoy_connected": connected, "config_acked": in_sync}
        return web.json_response(body, status=200 if in_sync else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.d.metrics.render(), content_type="text/plain", charset="utf-8")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(spec())


def build_admin_app(deps: AdminDeps, admin_token: str) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware(admin_token)], client_max_size=MAX_BODY_BYTES)
    r = AdminRoutes(deps)
    app.router.add_get("/v1/sessions", r.list_sessions)
    app.router.add_get("/v1/sessions/{id}", r.get_session)
    app.router.add_delete("/v1/sessions/{id}", r.delete_session)
    app.router.add_get("/v1/sessions/{id}/egress", r.get_egress)
    app.router.add_put("/v1/sessions/{id}/egress", r.put_egress)
    app.router.add_post("/v1/sessions/{id}/egress", r.post_egress)
    app.router.add_delete("/v1/sessions/{id}/egress/{host}", r.delete_egress)
    app.router.add_get("/v1/policy", r.get_policy)
    app.router.add_put("/v1/policy", r.put_policy)
    app.router.add_get("/v1/decisions", r.decisions)
    app.router.add_post("/v1/signing-keys/rotate", r.rotate_keys)
    app.router.add_get("/v1/secrets", r.list_secrets)
    app.router.add_get("/v1/secrets/{name}", r.get_secret)
    app.router.add_put("/v1/secrets/{name}", r.put_secret)
    app.router.add_delete("/v1/secrets/{name}", r.delete_secret)
    app.router.add_get("/healthz", r.healthz)
    app.router.add_get("/readyz", r.readyz)
    app.router.add_get("/metrics", r.metrics)
    app.router.add_get("/openapi.json", r.openapi)
    return app
