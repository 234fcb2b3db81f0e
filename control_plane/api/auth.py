"""Bearer-token check for the sessions API; health and reflection stay open so probes and grpcurl work."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

PROTECTED_PREFIX = "/sandgate.v1."


def token_matches(header: str | None, expected: str) -> bool:
    """Constant-time comparison of `Bearer <token>` against the expected token."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), expected.encode())


class BearerAuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not details.method.startswith(PROTECTED_PREFIX):
            return await continuation(details)
        metadata = dict(details.invocation_metadata or ())
        if token_matches(metadata.get("authorization"), self._token):
            return await continuation(details)
        handler = await continuation(details)
        return _reject(handler)


def _reject(handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    message = "missing or wrong API token: send metadata 'authorization: Bearer <api token>'"

    async def deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler is not None and handler.request_streaming:
        return grpc.stream_stream_rpc_method_handler(deny, request_deserializer=handler.request_deserializer)
    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny, request_deserializer=handler.request_deserializer)
    return grpc.unary_unary_rpc_method_handler(
        deny, request_deserializer=handler.request_deserializer if handler else None
    )
