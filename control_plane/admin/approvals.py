"""Admin routes for approvals: list (or follow as SSE) the open ones, and decide one."""

from __future__ import annotations

import json
from typing import Annotated

from aiohttp import web
from pydantic import Field, TypeAdapter

from control_plane.admin import models as m
from control_plane.admin.http import OPERATOR_KEY, read_body, read_path, read_query, respond
from control_plane.admin.spec import Operation
from control_plane.approvals.desk import ApprovalDesk

APPROVAL_ID = TypeAdapter(Annotated[str, Field(pattern=r"^a-[0-9a-f]{16}$", description="a- and 16 hex digits")])


class ApprovalRoutes:
    def __init__(self, desk: ApprovalDesk) -> None:
        self._desk = desk

    async def list(self, request: web.Request) -> web.StreamResponse:
        """GET /v1/approvals[?session_id=]: the open approvals; `Accept: text/event-stream` follows them."""
        session_id = read_query(request, m.ApprovalsQuery).session_id
        if "text/event-stream" in request.headers.get("Accept", ""):
            return await self._follow(request, session_id)
        pending = [a.to_dict() for a in self._desk.pending(session_id)]
        return respond(m.Approvals.model_validate({"approvals": pending}))

    async def decide(self, request: web.Request) -> web.Response:
        """POST /v1/approvals/{id} `{"decision": "allow_once" | "allow_session" | "deny"}`: the closed approval."""
        approval_id = read_path(request, "id", APPROVAL_ID)
        body = await read_body(request, m.ApprovalDecision)
        closed = await self._desk.decide(approval_id, body.decision, request[OPERATOR_KEY])
        return respond(m.Approval.model_validate(closed.to_dict()))

    async def _follow(self, request: web.Request, session_id: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        async for approval in self._desk.follow():
            if session_id and approval.session_id != session_id:
                continue
            await response.write(f"event: approval\ndata: {json.dumps(approval.to_dict())}\n\n".encode())
        return response


def approval_operations(desk: ApprovalDesk) -> tuple[Operation, ...]:
    r = ApprovalRoutes(desk)
    return (
        Operation("GET", "/v1/approvals", r.list, "Open approvals: requests held on an unlisted destination "
                  "(on_unlisted ASK) and sandboxes' proposals, oldest first. Accept: text/event-stream follows "
                  "them as they open and close", m.Approvals, query=m.ApprovalsQuery, errors=(400, 401)),
        Operation("POST", "/v1/approvals/{id}", r.decide, "Decide an approval: allow_once releases the held "
                  "requests, allow_session adds the rule (ACKed) and releases them, deny answers them 403 "
                  "approval-denied", m.Approval, body=m.ApprovalDecision, errors=(400, 401, 404, 409, 504),
                  path_params={"id": APPROVAL_ID}),
    )  # fmt: skip
