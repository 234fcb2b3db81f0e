"""The sync client: the same objects as `sandgate.aio`, without `await`. Each call runs the async
client on the client's own loop thread (see `_portal`)."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sandgate._portal import Portal
from sandgate.aio import Argv, AsyncDecisions, AsyncEgress, AsyncSandgate, AsyncSession, AsyncSessions, Pty
from sandgate.discovery import Endpoints, discover
from sandgate.models import Decision, EgressChange, EgressRule, ExecResult, Limits, Output, SessionInfo
from sandgate.process import AsyncProcess


class Sandgate:
    """Both APIs through one object: `with Sandgate.connect() as sg:`. Nothing is opened until the first call."""

    def __init__(self, endpoints: Endpoints, timeout: float = 60.0) -> None:
        self._portal = Portal()
        self._async = AsyncSandgate(endpoints, timeout)
        self.endpoints = endpoints
        self.sessions = Sessions(self._async.sessions, self._portal)
        self.decisions = Decisions(self._async.decisions, self._portal)

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
    ) -> Sandgate:
        """Find the service as the CLI does; see `AsyncSandgate.connect`."""
        found = discover(
            config, grpc_addr=grpc_addr, admin_addr=admin_addr, api_token=api_token, admin_token=admin_token
        )
        return cls(found, timeout)

    def close(self) -> None:
        """Close both connections (running processes are killed) and the client's loop thread."""
        self._portal.run(self._async.close())
        self._portal.close()

    def __enter__(self) -> Sandgate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sessions:
    def __init__(self, sessions: AsyncSessions, portal: Portal) -> None:
        self._async, self._portal = sessions, portal

    def create(
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
    ) -> Session:
        """Start a sandbox that may reach `allow` (`HOST[:PORT,...]`) and `egress`; READY when it returns."""
        created = self._portal.run(
            self._async.create(allow, egress=egress, ttl_seconds=ttl_seconds, idle_timeout_seconds=idle_timeout_seconds,
                               image=image, env=env, labels=labels, limits=limits, report_only=report_only)
        )  # fmt: skip
        return Session(created, self._portal)

    def get(self, session_id: str) -> Session:
        """A handle on an existing session; NotFound if there is none."""
        return Session(self._portal.run(self._async.get(session_id)), self._portal)

    def list(self, labels: Mapping[str, str] | None = None) -> list[SessionInfo]:
        """Every session whose labels include `labels`."""
        return self._portal.run(self._async.list(labels))

    def delete(self, session_id: str) -> None:
        """End a session (idempotent)."""
        self._portal.run(self._async.delete(session_id))


class Session:
    """One sandbox; `with` ends it on leaving."""

    def __init__(self, session: AsyncSession, portal: Portal) -> None:
        self._async, self._portal = session, portal
        self.egress = Egress(session.egress, portal)

    @property
    def id(self) -> str:
        return self._async.id

    @property
    def info(self) -> SessionInfo:
        return self._async.info

    @property
    def token(self) -> str:
        return self._async.token

    def refresh(self) -> SessionInfo:
        return self._portal.run(self._async.refresh())

    def run(
        self, argv: Argv, *, stdin: bytes = b"", env: Mapping[str, str] | None = None, timeout_seconds: int = 0
    ) -> ExecResult:
        """Run a command to its end and return its exit code and output."""
        return self._portal.run(self._async.run(argv, stdin=stdin, env=env, timeout_seconds=timeout_seconds))

    def exec(
        self,
        argv: Argv,
        *,
        stdin: bytes | None = None,
        pty: Pty = False,
        env: Mapping[str, str] | None = None,
        timeout_seconds: int = 0,
    ) -> Process:
        """Start a command and return it running; see `AsyncSession.exec`."""
        started = self._async.exec(argv, stdin=stdin, pty=pty, env=env, timeout_seconds=timeout_seconds)
        return Process(self._portal.run(started), self._portal)

    def write_file(self, file: str, data: bytes) -> int:
        return self._portal.run(self._async.write_file(file, data))

    def read_file(self, file: str) -> bytes:
        return self._portal.run(self._async.read_file(file))

    def delete(self) -> None:
        self._portal.run(self._async.delete())

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


class Process:
    """A running command: iterate it for `Output`, write stdin, resize, signal, kill, wait."""

    def __init__(self, process: AsyncProcess, portal: Portal) -> None:
        self._async, self._portal = process, portal

    @property
    def exit_code(self) -> int | None:
        return self._async.exit_code

    def __iter__(self) -> Iterator[Output]:
        return self._portal.iterate(aiter(self._async))

    def write(self, data: bytes | str) -> None:
        self._portal.run(self._async.write(data))

    def close_stdin(self) -> None:
        self._portal.run(self._async.close_stdin())

    def resize(self, rows: int, cols: int) -> None:
        self._portal.run(self._async.resize(rows, cols))

    def signal(self, signum: int) -> None:
        self._portal.run(self._async.signal(signum))

    def kill(self) -> None:
        self._portal.run(self._async.kill())

    def cancel(self) -> None:
        self._portal.run(_call(self._async.cancel))

    def wait(self) -> ExecResult:
        return self._portal.run(self._async.wait())


class Egress:
    """A session's allowlist, changed live; see `AsyncEgress`."""

    def __init__(self, egress: AsyncEgress, portal: Portal) -> None:
        self._async, self._portal = egress, portal

    def list(self) -> tuple[EgressRule, ...]:
        return self._portal.run(self._async.list())

    def add(
        self, rule: str | EgressRule, *, ports: Sequence[int] = (), methods: Sequence[str] = (), wait: bool = True
    ) -> EgressChange:
        return self._portal.run(self._async.add(rule, ports=ports, methods=methods, wait=wait))

    def remove(self, host: str, *, wait: bool = True) -> EgressChange:
        return self._portal.run(self._async.remove(host, wait=wait))

    def replace(self, rules: Sequence[EgressRule | str], *, wait: bool = True) -> EgressChange:
        return self._portal.run(self._async.replace(rules, wait=wait))


class Decisions:
    """The audit log of egress decisions; see `AsyncDecisions`."""

    def __init__(self, decisions: AsyncDecisions, portal: Portal) -> None:
        self._async, self._portal = decisions, portal

    def list(self, session_id: str = "", verdict: str = "", limit: int = 100) -> list[Decision]:
        return self._portal.run(self._async.list(session_id, verdict, limit))

    def follow(self, session_id: str = "", verdict: str = "") -> Generator[Decision, None, None]:
        """New decisions as they happen; stop by leaving the loop (the generator closes the stream)."""
        return self._portal.iterate(self._async.follow(session_id, verdict))


async def _call(fn: Any) -> None:
    fn()
