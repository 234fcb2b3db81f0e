"""A small client for the sessions API, used by the CLI and the tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb

_PATH = "/sandgate.v1.Sessions/"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


EXEC_DEADLINE_MARGIN_S = 30


class SessionsClient:
    def __init__(self, address: str, token: str, timeout: float = 60.0) -> None:
        self._channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 17 << 20)])
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SessionsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, method: str, request: Any, response_type: Any) -> Any:
        call = self._channel.unary_unary(
            _PATH + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return call(request, metadata=self._metadata, timeout=self._timeout)

    def create(
        self,
        egress: Sequence[Mapping[str, Any]] = (),
        ttl_seconds: int | None = None,
        image: str = "",
        labels: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        limits: Mapping[str, Any] | None = None,
        report_only: bool = False,
        idle_timeout_seconds: int = 0,
        on_unlisted: str = "DENY",
    ) -> pb.Session:
        req = pb.CreateSessionRequest(
            image=image,
            egress=[pb.EgressRule(**rule) for rule in egress],
            labels=dict(labels or {}),
            env=dict(env or {}),
            limits=pb.Limits(**(limits or {})),
            report_only=report_only,
            idle_timeout_seconds=idle_timeout_seconds,
            on_unlisted=on_unlisted,
        )
        if ttl_seconds is not None:
            req.ttl_seconds = ttl_seconds
        return self._unary("CreateSession", req, pb.Session)  # type: ignore[no-any-return]

    def get(self, session_id: str) -> pb.Session:
        return self._unary("GetSession", pb.GetSessionRequest(session_id=session_id), pb.Session)  # type: ignore[no-any-return]

    def list(
        self, labels: Mapping[str, str] | None = None, page_size: int = 0, page_token: str = ""
    ) -> pb.ListSessionsResponse:
        req = pb.ListSessionsRequest(label_selector=dict(labels or {}), page_size=page_size, page_token=page_token)
        return self._unary("ListSessions", req, pb.ListSessionsResponse)  # type: ignore[no-any-return]

    def delete(self, session_id: str) -> None:
        self._unary("DeleteSession", pb.DeleteSessionRequest(session_id=session_id), empty_pb2.Empty)

    def exec_stream(
        self,
        session_id: str,
        argv: Sequence[str],
        stdin: bytes = b"",
        env: Mapping[str, str] | None = None,
        timeout_seconds: int = 0,
    ) -> Iterator[pb.ExecResponse]:
        call = self._channel.unary_stream(
            _PATH + "Exec",
            request_serializer=pb.ExecRequest.SerializeToString,
            response_deserializer=pb.ExecResponse.FromString,
        )
        req = pb.ExecRequest(
            session_id=session_id, argv=list(argv), stdin=stdin, env=dict(env or {}), timeout_seconds=timeout_seconds
        )
        # The command's own timeout bounds the call (with a margin for teardown); without one, the call may
        # run as long as the command: a quiet command is not a dead call.
        deadline = timeout_seconds + EXEC_DEADLINE_MARGIN_S if timeout_seconds else None
        return call(req, metadata=self._metadata, timeout=deadline)  # type: ignore[no-any-return]

    def write_file(self, session_id: str, path: str, data: bytes) -> int:
        req = pb.WriteFileRequest(session_id=session_id, path=path, data=data)
        return int(self._unary("WriteFile", req, pb.WriteFileResponse).size)

    def read_file(self, session_id: str, path: str) -> bytes:
        call = self._channel.unary_stream(
            _PATH + "ReadFile",
            request_serializer=pb.ReadFileRequest.SerializeToString,
            response_deserializer=pb.ReadFileResponse.FromString,
        )
        chunks = call(
            pb.ReadFileRequest(session_id=session_id, path=path), metadata=self._metadata, timeout=self._timeout
        )
        return b"".join(c.data for c in chunks)

    def exec(self, session_id: str, argv: Sequence[str], stdin: bytes = b"", **kw: Any) -> ExecResult:
        out, err, code = bytearray(), bytearray(), -1
        for chunk in self.exec_stream(session_id, argv, stdin, **kw):
            kind = chunk.WhichOneof("output")
            if kind == "stdout":
                out += chunk.stdout
            elif kind == "stderr":
                err += chunk.stderr
            elif kind == "exit_code":
                code = chunk.exit_code
        return ExecResult(code, bytes(out), bytes(err))
