"""Admin routes for approvals: list (or follow as SSE) the open ones, and decide one."""

from __future__ import annotations

import json

from aiohttp import web

from control_plane.admin.http import OPERATOR_KEY, read_json
from control_plane.approvals.desk import ApprovalDesk


class ApprovalRoutes:
    def __init__(self, desk: ApprovalDesk) -> None:
        self._desk = desk

    async def list(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/approvals[?session_id=]: the open approvals; `Accept: text/event-stream` follows them."""
        session_id = request.query.get("session_id", "")
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await self._follow(request, session_id)
        return web.json_response({"approvals": [a.to_dict() for a in self._desk.pending(session_id)]})

    async def decide(self, request: web.Request) -> web.Response:
        """POST /v1/approvals/{id} `{"decision": "allow_once" | "allow_session" | "deny"}`: the closed approval."""
        body = await read_json(request, frozenset({"decision"}))
        decision = str(body.get("decision", ""))
        closed = await self._desk.decide(request.match_info["id"], decision, request[OPERATOR_KEY])
        return web.json_response(closed.to_dict())

    async def _follow(self, request: web.Request, session_id: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        async for approval in self._desk.follow():
            if session_id and approval.session_id != session_id:
                continue
            await response.write(f"event: approval\ndata: {json.dumps(approval.to_dict())}\n\n".encode())
        return response


def add_approval_routes(app: web.Application, desk: ApprovalDesk) -> None:
    routes = ApprovalRoutes(desk)
    app.router.add_get("/v1/approvals", routes.list)
    app.router.add_post("/v1/approvals/{id}", routes.decide)
