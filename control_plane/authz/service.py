"""Envoy's ext_authz Check on grpc.aio: parse, decide, answer. Any exception is a deny.

Requests and answers are the wire subsets of protos/sandgate/wire/authz.proto (Envoy's field numbers)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from control_plane.api.gen.sandgate.wire.authz_pb2 import (
    CheckResponse,
    DeniedHttpResponse,
    HeaderValue,
    HeaderValueOption,
    HttpStatus,
    OkHttpResponse,
    RpcStatus,
)
from control_plane.authz.check_wire import check_input
from control_plane.authz.decide import CheckInput, Decision, SessionView, decide, needs_approval
from control_plane.envoy_contract import DENY_HEADER, INTERNAL_ERROR, PROXY_AUTHENTICATE
from control_plane.xds.builders.route import deny_body

log = logging.getLogger(__name__)
SERVICE = "envoy.service.auth.v3.Authorization"
_OK = CheckResponse(status=RpcStatus(code=0), ok_response=OkHttpResponse()).SerializeToString()

SessionLookup = Callable[[str], SessionView | None]
DecisionSink = Callable[[CheckInput, Decision], None]
Timer = Callable[[float], None]  # told each check's duration, in seconds
# Holds a request on its destination's approval until an operator decides or it times out (approvals/).
Approvals = Callable[[CheckInput, Decision], Awaitable[Decision]]


def deny_response(session_id: str, decision: Decision) -> bytes:
    """A serialized CheckResponse that denies with the decision's status (403 or 407), reason header and body."""
    headers = [HeaderValueOption(header=HeaderValue(key=DENY_HEADER, value=decision.reason))]
    if decision.http_status == 407:
        headers.append(HeaderValueOption(header=HeaderValue(key=PROXY_AUTHENTICATE[0], value=PROXY_AUTHENTICATE[1])))
    denied = DeniedHttpResponse(
        status=HttpStatus(code=decision.http_status),
        headers=headers,
        body=deny_body(session_id, decision.reason),
    )
    status = RpcStatus(code=grpc.StatusCode.PERMISSION_DENIED.value[0])
    return CheckResponse(status=status, denied_response=denied).SerializeToString()


class AuthorizationService:
    def __init__(
        self,
        lookup: SessionLookup,
        sink: DecisionSink | None = None,
        timer: Timer | None = None,
        approvals: Approvals | None = None,
    ) -> None:
        self._lookup = lookup
        self._sink = sink
        self._timer = timer
        self._approvals = approvals

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic gRPC handler of envoy.service.auth.v3.Authorization/Check (bytes in, bytes out)."""
        method = grpc.unary_unary_rpc_method_handler(self.check, request_deserializer=None, response_serializer=None)
        return grpc.method_handlers_generic_handler(SERVICE, {"Check": method})

    async def check(self, request: bytes, context: Any) -> bytes:
        """One ext_authz Check: CheckRequest bytes in, CheckResponse bytes out; any failure is a deny."""
        started = time.perf_counter()
        try:
            return await self._answer(request)
        finally:
            if self._timer:
                self._timer(time.perf_counter() - started)

    async def _answer(self, request: bytes) -> bytes:
        try:
            check = check_input(request)
            session = self._lookup(check.session_id)
            decision = decide(check, session)
            if self._approvals and needs_approval(check, session, decision):
                decision = await self._approvals(check, decision)
        except Exception:
            log.exception("ext_authz: check failed; denying")
            return deny_response("unknown", Decision(False, INTERNAL_ERROR))
        if self._sink:
            self._sink(check, decision)
        return _OK if decision.allowed else deny_response(check.session_id, decision)
