"""Envoy's ext_authz Check on grpc.aio: parse, decide, answer. Any exception is a deny."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
from envoy_data_plane.envoy.config.core.v3 import HeaderValue, HeaderValueOption
from envoy_data_plane.envoy.service.auth.v3 import CheckResponse, DeniedHttpResponse, OkHttpResponse
from envoy_data_plane.envoy.type.v3 import HttpStatus, StatusCode
from envoy_data_plane.google.rpc import Status

from control_plane.authz.check_wire import check_input
from control_plane.authz.decide import CheckInput, Decision, SessionView, decide
from control_plane.envoy_contract import DENY_HEADER, INTERNAL_ERROR, PROXY_AUTHENTICATE
from control_plane.xds.builders.route import deny_body

log = logging.getLogger(__name__)
SERVICE = "envoy.service.auth.v3.Authorization"
_OK = bytes(CheckResponse(status=Status(code=0), ok_response=OkHttpResponse()))

SessionLookup = Callable[[str], SessionView | None]
DecisionSink = Callable[[CheckInput, Decision], None]


def deny_response(session_id: str, decision: Decision) -> bytes:
    """A serialized CheckResponse that denies with the decision's status (403 or 407), reason header and body."""
    headers = [HeaderValueOption(header=HeaderValue(key=DENY_HEADER, value=decision.reason))]
    if decision.http_status == 407:
        headers.append(HeaderValueOption(header=HeaderValue(key=PROXY_AUTHENTICATE[0], value=PROXY_AUTHENTICATE[1])))
    denied = DeniedHttpResponse(
        status=HttpStatus(code=StatusCode(decision.http_status)),
        headers=headers,
        body=deny_body(session_id, decision.reason),
    )
    return bytes(CheckResponse(status=Status(code=grpc.StatusCode.PERMISSION_DENIED.value[0]), denied_response=denied))


class AuthorizationService:
    def __init__(self, lookup: SessionLookup, sink: DecisionSink | None = None) -> None:
        self._lookup = lookup
        self._sink = sink

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic gRPC handler of envoy.service.auth.v3.Authorization/Check (bytes in, bytes out)."""
        method = grpc.unary_unary_rpc_method_handler(self.check, request_deserializer=None, response_serializer=None)
        return grpc.method_handlers_generic_handler(SERVICE, {"Check": method})

    async def check(self, request: bytes, context: Any) -> bytes:
        """One ext_authz Check: CheckRequest bytes in, CheckResponse bytes out; any failure is a deny."""
        try:
            check = check_input(request)
            decision = decide(check, self._lookup(check.session_id))
        except Exception:
            log.exception("ext_authz: check failed; denying")
            return deny_response("unknown", Decision(False, INTERNAL_ERROR))
        if self._sink:
            self._sink(check, decision)
        return _OK if decision.allowed else deny_response(check.session_id, decision)
