"""The sandgate.v1.Sessions gRPC service: parse, make one call, map the result."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2

from control_plane.api import convert, interactive, paging
from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from control_plane.domain.session import check_env_count, check_label_count
from control_plane.errors import SandgateError
from control_plane.sessions.manager import SessionManager
from control_plane.sessions.runtime import ExecChunk
from control_plane.sessions.sandbox_calls import SandboxCalls

log = logging.getLogger(__name__)
SERVICE = "sandgate.v1.Sessions"
T = TypeVar("T")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    if isinstance(exc, SandgateError):
        await context.abort(grpc.StatusCode[exc.grpc_code], str(exc))
    log.exception("sessions API: unexpected error", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the control plane log")


def _exec_response(chunk: ExecChunk) -> pb.ExecResponse:
    if chunk.exit_code is not None:
        return pb.ExecResponse(exit_code=chunk.exit_code)
    if chunk.stream == "stderr":
        return pb.ExecResponse(stderr=chunk.data)
    return pb.ExecResponse(stdout=chunk.data)


class SessionsService:
    def __init__(self, manager: SessionManager, calls: SandboxCalls) -> None:
        self._manager = manager
        self._calls = calls

    def _proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._manager.settings.forward_port}"

    async def _call(self, context: Any, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except Exception as exc:
            await _abort(context, exc)
            raise  # unreachable: abort raises

    async def create(self, req: pb.CreateSessionRequest, context: Any) -> pb.Session:
        async def work() -> pb.Session:
            st = self._manager.settings
            session, token = await self._manager.create(convert.create_request(req, st.rule_limits, st.metadata_limits))
            return convert.session_message(session, self._proxy_url(), token)

        return await self._call(context, work)

    async def get(self, req: pb.GetSessionRequest, context: Any) -> pb.Session:
        async def work() -> pb.Session:
            return convert.session_message(self._manager.registry.get(req.session_id), self._proxy_url())

        return await self._call(context, work)

    async def list(self, req: pb.ListSessionsRequest, context: Any) -> pb.ListSessionsResponse:
        async def work() -> pb.ListSessionsResponse:
            check_label_count(len(req.label_selector), self._manager.settings.metadata_limits, "label_selector")
            sessions = self._manager.registry.matching(dict(req.label_selector))
            start = paging.offset(req.page_token)
            chosen = sessions[start : start + paging.page_size(req.page_size)]
            page = paging.fill(convert.session_message(s, self._proxy_url()) for s in chosen)
            end = start + len(page)
            token = paging.token(end) if end < len(sessions) else ""
            return pb.ListSessionsResponse(sessions=page, next_page_token=token)

        return await self._call(context, work)

    async def delete(self, req: pb.DeleteSessionRequest, context: Any) -> empty_pb2.Empty:
        async def work() -> empty_pb2.Empty:
            await self._manager.delete(req.session_id)
            return empty_pb2.Empty()

        return await self._call(context, work)

    async def exec(self, req: pb.ExecRequest, context: Any) -> AsyncIterator[pb.ExecResponse]:
        try:
            check_env_count(len(req.env), "env", self._manager.settings.metadata_limits)
            chunks = self._calls.exec(req.session_id, list(req.argv), dict(req.env), req.stdin, req.timeout_seconds)
            async for chunk in chunks:
                yield _exec_response(chunk)
        except Exception as exc:
            await _abort(context, exc)

    async def exec_interactive(
        self, requests: AsyncIterator[pb.ExecInput], context: Any
    ) -> AsyncIterator[pb.ExecResponse]:
        try:
            session_id, command = await interactive.first_command(requests)
            check_env_count(len(command.env), "env", self._manager.settings.metadata_limits)
            inputs = interactive.inputs(requests, command.pty is not None)
            async for chunk in self._calls.exec_interactive(session_id, command, inputs):
                yield _exec_response(chunk)
        except Exception as exc:
            await _abort(context, exc)

    async def write_file(self, req: pb.WriteFileRequest, context: Any) -> pb.WriteFileResponse:
        async def work() -> pb.WriteFileResponse:
            return pb.WriteFileResponse(size=await self._calls.write_file(req.session_id, req.path, req.data))

        return await self._call(context, work)

    async def read_file(self, req: pb.ReadFileRequest, context: Any) -> AsyncIterator[pb.ReadFileResponse]:
        try:
            async for data in self._calls.read_file(req.session_id, req.path):
                yield pb.ReadFileResponse(data=data)
        except Exception as exc:
            await _abort(context, exc)

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Any, request: Any, response: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=request.FromString, response_serializer=response.SerializeToString
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateSession": unary(self.create, pb.CreateSessionRequest, pb.Session),
                "GetSession": unary(self.get, pb.GetSessionRequest, pb.Session),
                "ListSessions": unary(self.list, pb.ListSessionsRequest, pb.ListSessionsResponse),
                "DeleteSession": unary(self.delete, pb.DeleteSessionRequest, empty_pb2.Empty),
                "Exec": grpc.unary_stream_rpc_method_handler(
                    self.exec,
                    request_deserializer=pb.ExecRequest.FromString,
                    response_serializer=pb.ExecResponse.SerializeToString,
                ),
                "ExecInteractive": grpc.stream_stream_rpc_method_handler(
                    self.exec_interactive,
                    request_deserializer=pb.ExecInput.FromString,
                    response_serializer=pb.ExecResponse.SerializeToString,
                ),
                "WriteFile": unary(self.write_file, pb.WriteFileRequest, pb.WriteFileResponse),
                "ReadFile": grpc.unary_stream_rpc_method_handler(
                    self.read_file,
                    request_deserializer=pb.ReadFileRequest.FromString,
                    response_serializer=pb.ReadFileResponse.SerializeToString,
                ),
            },
        )
