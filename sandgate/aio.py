"""The async client: `AsyncSandgate.connect()`, then `sessions`, each session's `exec` and `egress`, and `decisions`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from sandgate import errors
from sandgate._transport import Admin, Grpc, path
from sandgate.discovery import Endpoints, discover
from sandgate.models import Decision, EgressChange, EgressRule, ExecResult, Limits, SessionInfo, rules_from
from sandgate.process import EXEC_DEADLINE_MARGIN_S, AsyncProcess

Argv = str | Sequence[str]  # a str runs under `sh -c`
Pty = bool | tuple[int, int]  # True: 24 rows by 80 columns


class AsyncSandgate:
    """Both APIs through one object. Use `async with AsyncSandgate.connect() as sg:`; nothing is
    opened until the first call."""

    def __init__(self, endpoints: Endpoints, timeout: float = 60.0) -> None:
        self.endpoints = endpoints
        self._grpc, self._admin = Grpc(endpoints, timeout), Admin(endpoints, timeout)
        self.sessions = AsyncSessions(self._grpc, self._admin)
        self.decisions = AsyncDecisions(self._admin)

    @classmethod
    def connect(
        cls,
        config: Path | str | None = None,
        *,
        grpc_addr: str = "",
        admin_addr: str = "",
        api_token: str = "",
        admin_token: str = "",
        timeout: float = 60.0,
    ) -> AsyncSandgate:
        """Find the service as the CLI does (see `sandgate.discovery`); an argument given
        overrides what is found. `timeout` (seconds) bounds each call but exec and follow."""
        found = discover(
            config, grpc_addr=grpc_addr, admin_addr=admin_addr, api_token=api_token, admin_token=admin_token
        )
        return cls(found, timeout)

    async def close(self) -> None:
        """Close both connections; running processes are killed."""
        await self._grpc.close()
        await self._admin.close()

    async def __aenter__(self) -> AsyncSandgate:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncSessions:
    def __init__(self, grpc_: Grpc, admin: Admin) -> None:
        self._grpc, self._admin = grpc_, admin

    async def create(
        self,
        allow: Sequence[str] = (),
        *,
        egress: Sequence[EgressRule] = (),
        ttl_seconds: int | None = None,
        idle_timeout_seconds: int = 0,
        image: str = "",
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        report_only: bool = False,
    ) -> AsyncSession:
        """Start a sandbox that may reach `allow` (`HOST[:PORT,...]`) and `egress`; READY when it returns."""
        lim = limits or Limits()
        req = pb.CreateSessionRequest(
            image=image,
            egress=[rule.to_pb() for rule in rules_from(allow, egress)],
            limits=pb.Limits(memory_mb=lim.memory_mb, cpus=lim.cpus, pids=lim.pids),
            env=dict(env or {}),
            labels=dict(labels or {}),
            report_only=report_only,
            idle_timeout_seconds=idle_timeout_seconds,
        )
        if ttl_seconds is not None:
            req.ttl_seconds = ttl_seconds
        info = SessionInfo.from_pb(await self._grpc.unary("CreateSession", req, pb.Session))
        return AsyncSession(info, self._grpc, self._admin)

    async def get(self, session_id: str) -> AsyncSession:
        """A handle on an existing session; NotFound if there is none."""
        req = pb.GetSessionRequest(session_id=session_id)
        info = SessionInfo.from_pb(await self._grpc.unary("GetSession", req, pb.Session))
        return AsyncSession(info, self._grpc, self._admin)

    async def list(self, labels: Mapping[str, str] | None = None) -> list[SessionInfo]:
        """Every session whose labels include `labels`, all pages."""
        found: list[SessionInfo] = []
        token = ""
        while True:
            req = pb.ListSessionsRequest(label_selector=dict(labels or {}), page_token=token)
            page = await self._grpc.unary("ListSessions", req, pb.ListSessionsResponse)
            found += [SessionInfo.from_pb(s) for s in page.sessions]
            if not (token := page.next_page_token):
                return found

    async def delete(self, session_id: str) -> None:
        """End a session (idempotent)."""
        await self._grpc.unary("DeleteSession", pb.DeleteSessionRequest(session_id=session_id), empty_pb2.Empty)


class AsyncSession:
    """One sandbox. `async with` ends it on leaving. `info` is as of creation or the last `refresh()`."""

    def __init__(self, info: SessionInfo, grpc_: Grpc, admin: Admin) -> None:
        self.info, self._grpc = info, grpc_
        self.egress = AsyncEgress(info.id, admin)

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def token(self) -> str:
        """The session token; set only on a session this client created."""
        return self.info.token

    async def refresh(self) -> SessionInfo:
        """The session as the service reports it now (the token is kept)."""
        fresh = SessionInfo.from_pb(
            await self._grpc.unary("GetSession", pb.GetSessionRequest(session_id=self.id), pb.Session)
        )
        self.info = replace(fresh, token=self.info.token)
        return self.info

    async def run(
        self, argv: Argv, *, stdin: bytes = b"", env: Mapping[str, str] | None = None, timeout_seconds: int = 0
    ) -> ExecResult:
        """Run a command to its end (the Exec RPC) and return its exit code and output."""
        req = pb.ExecRequest(session_id=self.id, argv=_argv(argv), stdin=stdin, env=dict(env or {}),
                             timeout_seconds=timeout_seconds)  # fmt: skip
        deadline = timeout_seconds + EXEC_DEADLINE_MARGIN_S if timeout_seconds else None
        out, err, code = bytearray(), bytearray(), -1
        try:
            async for chunk in self._grpc.unary_stream("Exec", req, pb.ExecResponse, deadline):
                kind = chunk.WhichOneof("output")
                if kind == "exit_code":
                    code = chunk.exit_code
                else:
                    (err if kind == "stderr" else out).extend(getattr(chunk, kind))
        except grpc.RpcError as exc:
            raise errors.from_grpc(exc) from None
        return ExecResult(code, bytes(out), bytes(err))

    async def exec(
        self,
        argv: Argv,
        *,
        stdin: bytes | None = None,
        pty: Pty = False,
        env: Mapping[str, str] | None = None,
        timeout_seconds: int = 0,
    ) -> AsyncProcess:
        """Start a command and return it running: iterate its output, write stdin, resize, signal, wait.
        `stdin` given: it is sent and closed at once. `pty`: True (24x80) or (rows, cols)."""
        size = None if pty is False else pb.TerminalSize(rows=24, cols=80) if pty is True else _size(pty)
        start = pb.ExecStart(session_id=self.id, argv=_argv(argv), env=dict(env or {}),
                             timeout_seconds=timeout_seconds, pty=size)  # fmt: skip
        process = await AsyncProcess.start(self._grpc, start)
        if stdin is not None:
            await process.write(stdin)
            await process.close_stdin()
        return process

    async def write_file(self, file: str, data: bytes) -> int:
        """Put `data` at `file`, an absolute path under /tmp; returns its size."""
        req = pb.WriteFileRequest(session_id=self.id, path=file, data=data)
        return int((await self._grpc.unary("WriteFile", req, pb.WriteFileResponse)).size)

    async def read_file(self, file: str) -> bytes:
        """The contents of `file`, an absolute path under /tmp."""
        req = pb.ReadFileRequest(session_id=self.id, path=file)
        chunks = bytearray()
        try:
            async for chunk in self._grpc.unary_stream("ReadFile", req, pb.ReadFileResponse, self._grpc.timeout):
                chunks += chunk.data
        except grpc.RpcError as exc:
            raise errors.from_grpc(exc) from None
        return bytes(chunks)

    async def delete(self) -> None:
        """End the session (idempotent)."""
        await self._grpc.unary("DeleteSession", pb.DeleteSessionRequest(session_id=self.id), empty_pb2.Empty)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.delete()


class AsyncEgress:
    """A session's allowlist, changed live over the admin API. `wait=True`: return once every Envoy
    applied the change (DeadlineExceeded if one did not in time)."""

    def __init__(self, session_id: str, admin: Admin) -> None:
        self._id, self._admin = session_id, admin

    async def list(self) -> tuple[EgressRule, ...]:
        body = await self._admin.call("GET", path("sessions", self._id, "egress"))
        return tuple(EgressRule.from_json(r) for r in body.get("egress", ()))

    async def add(
        self, rule: str | EgressRule, *, ports: Sequence[int] = (), methods: Sequence[str] = (), wait: bool = True
    ) -> EgressChange:
        """Allow one more destination: a rule, or a host (`HOST[:PORT,...]`) with `ports` and `methods`."""
        if isinstance(rule, str):
            parsed = EgressRule.parse(rule)
            rule = EgressRule(parsed.host, parsed.ports or tuple(ports), tuple(methods))
        body = await self._admin.call("POST", path("sessions", self._id, "egress"), rule.to_json(), _wait(wait))
        return EgressChange.from_json(body)

    async def remove(self, host: str, *, wait: bool = True) -> EgressChange:
        """Remove the rule for `host` (a CIDR's `/` is fine: it is encoded)."""
        body = await self._admin.call("DELETE", path("sessions", self._id, "egress", host), None, _wait(wait))
        return EgressChange.from_json(body)

    async def replace(self, rules: Sequence[EgressRule | str], *, wait: bool = True) -> EgressChange:
        """Replace every rule at once (atomic)."""
        parsed = [EgressRule.parse(r) if isinstance(r, str) else r for r in rules]
        body = {"egress": [r.to_json() for r in parsed]}
        return EgressChange.from_json(
            await self._admin.call("PUT", path("sessions", self._id, "egress"), body, _wait(wait))
        )


class AsyncDecisions:
    """The audit log of egress decisions."""

    def __init__(self, admin: Admin) -> None:
        self._admin = admin

    async def list(self, session_id: str = "", verdict: str = "", limit: int = 100) -> list[Decision]:
        """The latest `limit` decisions, filtered by session and verdict (allow, deny, would_deny, error, event)."""
        query = {k: v for k, v in {"session_id": session_id, "verdict": verdict}.items() if v} | {"limit": str(limit)}
        body = await self._admin.call("GET", path("decisions"), None, query)
        return [Decision.from_json(d) for d in body.get("decisions", ())]

    async def follow(self, session_id: str = "", verdict: str = "") -> AsyncGenerator[Decision, None]:
        """New decisions as they happen (server-sent events), endlessly; break out to stop."""
        query = {k: v for k, v in {"session_id": session_id, "verdict": verdict}.items() if v}
        async for event in self._admin.events(path("decisions"), query):
            yield Decision.from_json(event)


def _argv(argv: Argv) -> list[str]:
    return ["sh", "-c", argv] if isinstance(argv, str) else list(argv)


def _size(pty: tuple[int, int]) -> pb.TerminalSize:
    rows, cols = pty
    return pb.TerminalSize(rows=rows, cols=cols)


def _wait(wait: bool) -> dict[str, str]:
    return {"wait": "applied"} if wait else {}
