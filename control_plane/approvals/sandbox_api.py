"""What a sandbox reaches at http://sandgate.internal through its own proxy: its rules, and proposals.

Served on a root-only unix socket that only Envoy connects to. The session is the one Envoy's route
names in `x-sandgate-session-id`: the route of the listener whose token check the request passed,
which overwrites any such header the sandbox sent (xds/builders/route.py).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from control_plane.admin.http import error_middleware, read_body
from control_plane.approvals.desk import ApprovalDesk
from control_plane.domain.rules import EgressRule
from control_plane.domain.session import Session
from control_plane.xds.builders.route import SESSION_HEADER

MAX_BODY_BYTES = 4096


class Proposal(BaseModel):
    """A rule a sandbox asks for, and why (validated again as a rule, and the reason by the approval book)."""

    model_config = ConfigDict(extra="forbid")
    host: str
    ports: list[int] = []
    methods: list[str] = []
    reason: str


SessionOf = Callable[[str], Session]  # NotFound for a session that has ended
ParseRule = Callable[[dict[str, object]], EgressRule]


class SandboxApi:
    def __init__(self, desk: ApprovalDesk, session_of: SessionOf, parse_rule: ParseRule) -> None:
        self._desk = desk
        self._session_of = session_of
        self._parse_rule = parse_rule

    def _session(self, request: web.Request) -> Session:
        return self._session_of(request.headers.get(SESSION_HEADER, ""))

    async def rules(self, request: web.Request) -> web.Response:
        """GET /v1/rules: the rules in force for this sandbox's session."""
        s = self._session(request)
        body = {"session_id": s.id, "egress": [r.to_dict() for r in s.egress], "on_unlisted": s.on_unlisted.value}
        return web.json_response(body)

    async def propose(self, request: web.Request) -> web.Response:
        """POST /v1/rules `{"host", "ports", "methods", "reason"}`: 202 with the pending approval."""
        s = self._session(request)
        proposal = await read_body(request, Proposal)
        rule = self._parse_rule(proposal.model_dump(exclude={"reason"}))
        approval = self._desk.propose(s.id, rule, proposal.reason)
        return web.json_response({"approval": approval.to_dict()}, status=202)

    async def approvals(self, request: web.Request) -> web.Response:
        """GET /v1/approvals: this session's open approvals (held requests and proposals)."""
        s = self._session(request)
        return web.json_response({"approvals": [a.to_dict() for a in self._desk.pending(s.id)]})


def build_sandbox_api(api: SandboxApi) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/v1/rules", api.rules)
    app.router.add_post("/v1/rules", api.propose)
    app.router.add_get("/v1/approvals", api.approvals)
    return app
