"""Session lifecycle: create, inspect, exec, end and expire sandboxes, keeping store, Envoy and docker in step."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from control_plane.domain import session as sess
from control_plane.domain import tokens
from control_plane.domain.capacity import Capacity, Usage, admit, usage_of
from control_plane.domain.expansion import route_size_problem
from control_plane.domain.policy import Policy, with_defaults
from control_plane.domain.rules import EgressRule, RuleLimits, check_credentials, parse_rules
from control_plane.domain.session import LimitBounds, Limits, MetadataLimits, Session, State
from control_plane.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    PayloadTooLarge,
    SandgateError,
    Unavailable,
)
from control_plane.inspection.authority import SANDBOX_BUNDLE
from control_plane.sessions import socket_dir
from control_plane.sessions.keyring import Keyring
from control_plane.sessions.liveness import Liveness
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerRuntime, ContainerSpec, ExecChunk
from control_plane.xds.publisher import ConfigPublisher, Expected

TRUST_VARIABLES = (
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "GIT_SSL_CAINFO",
)  # fmt: skip
log = logging.getLogger(__name__)
SOCKET_WAIT_S = 5.0
SCRATCH = PurePosixPath("/tmp")


def scratch_path(path: str) -> str:
    """An absolute path inside the sandbox's scratch space; InvalidArgument naming `path` otherwise."""
    p = PurePosixPath(path)
    if not p.is_absolute() or ".." in p.parts or SCRATCH not in p.parents or "\0" in path:
        raise InvalidArgument(f"{path!r} must be an absolute path under /tmp without '..'", field="path")
    return str(p)


@dataclass(frozen=True)
class CreateRequest:
    image: str = ""
    ttl_seconds: int | None = None
    egress: Sequence[dict[str, object]] = ()
    memory_mb: int = 0
    cpus: float = 0.0
    pids: int = 0
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    report_only: bool = False
    idle_timeout_seconds: int = 0


@dataclass(frozen=True)
class ManagerSettings:
    node_id: str
    state_dir: Path
    forwarder_binary: Path
    default_image: str
    forward_port: int
    default_ttl_seconds: int
    max_ttl_seconds: int
    capacity: Capacity
    default_limits: Limits
    bounds: LimitBounds = field(default_factory=LimitBounds)
    rule_limits: RuleLimits = field(default_factory=RuleLimits)
    metadata_limits: MetadataLimits = field(default_factory=MetadataLimits)
    allow_broad_wildcards: bool = False
    max_write_bytes: int = 16 << 20
    max_read_bytes: int = 64 << 20
    file_timeout_s: float = 60.0

    @property
    def sessions_dir(self) -> Path:
        return self.state_dir / "sessions"

    def socket_dir(self, session_id: str) -> Path:
        return self.sessions_dir / session_id


class SessionManager:
    def __init__(
        self,
        settings: ManagerSettings,
        registry: SessionRegistry,
        runtime: ContainerRuntime,
        publisher: ConfigPublisher,
        keyring: Keyring,
        policy: Callable[[], Policy],
        clock: Callable[[], float] = time.time,
        secret_exists: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self._secret_exists = secret_exists
        self.settings = settings
        self.registry = registry
        self._runtime = runtime
        self._publisher = publisher
        self._keyring = keyring
        self._policy = policy
        self._clock = clock
        self._reserved = Usage()  # admitted sessions not yet in the registry
        self.pool: WarmPool | None = None
        self.liveness = Liveness()  # ends the calls in flight when a session ends or its sandbox dies

    def proxy_env(self, session: Session, token: str) -> dict[str, str]:
        url = f"http://sandgate:{token}@127.0.0.1:{self.settings.forward_port}"
        no_proxy = "localhost,127.0.0.1"
        return {
            "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
            "NO_PROXY": no_proxy, "no_proxy": no_proxy, "SANDGATE_SESSION_ID": session.id,
        }  # fmt: skip

    def trust_env(self, session: Session) -> dict[str, str]:
        """With inspection, common clients read the session's bundle (system CAs and its own CA) from these
        variables; the caller's own values win (a client matrix test brings its own CA)."""
        if not self._publisher.inspects(session):
            return {}
        return dict.fromkeys(TRUST_VARIABLES, SANDBOX_BUNDLE)

    def republish(self) -> None:
        """Put every stored session's config back into the (empty) cache, e.g. after a restart."""
        for session in self.registry.all():
            if session.state == State.READY:
                self._publisher.put_session(session)

    # ---- create --------------------------------------------------------------------------------

    def _validate(self, req: CreateRequest) -> Session:
        st = self.settings
        now = self._clock()
        ttl = sess.validate_ttl(req.ttl_seconds, st.default_ttl_seconds, st.max_ttl_seconds)
        return Session(
            id=sess.new_session_id(),
            state=State.PENDING,
            node_id=st.node_id,
            image=sess.validate_image(req.image, st.default_image),
            created_at=now,
            expires_at=now + ttl,
            egress=self._egress(req.egress),
            limits=sess.validate_limits(req.memory_mb, req.cpus, req.pids, st.default_limits, st.bounds),
            labels=sess.validate_labels(req.labels, st.metadata_limits),
            env=sess.validate_env(req.env, limits=st.metadata_limits),
            token_id=tokens.new_token_id(),
            report_only=req.report_only,
            idle_timeout_s=sess.validate_idle_timeout(req.idle_timeout_seconds, ttl),
        )

    def _egress(self, raw: Sequence[dict[str, object]]) -> tuple[EgressRule, ...]:
        """The requested rules over the policy's defaults, within the rule limits as a whole."""
        st = self.settings
        policy = self._policy()
        rules = with_defaults(
            policy, parse_rules(list(raw), allow_broad=st.allow_broad_wildcards, limits=st.rule_limits)
        )
        if problem := route_size_problem(rules, policy, st.rule_limits):
            raise InvalidArgument(problem, field="egress")
        check_credentials(rules, self._secret_exists)
        return rules

    def usage(self) -> Usage:
        """What live sessions, and those admitted but not yet registered, hold."""
        return usage_of(s.limits for s in self.registry.all()) + self._reserved

    async def create(self, req: CreateRequest) -> tuple[Session, str]:
        """Start a sandbox (or claim a warm one); READY only once Envoy has ACKed its listener.

        Everything is validated, then capacity is checked (CapacityExhausted naming what is exhausted),
        before anything is created."""
        session = self._validate(req)
        admit(self.usage(), session.limits, self.settings.capacity)
        self._reserved = self._reserved.plus(session.limits)  # admitted, not yet in the registry: counted here
        try:
            warm = self.pool.claim(session.image, session.limits, not session.env) if self.pool else None
            if warm:
                session = replace(session, id=warm[0], container_id=warm[1])
            elif not await self._runtime.image_exists(session.image):
                raise InvalidArgument(f"image {session.image!r} is not present on this host", field="image")
            token = tokens.mint(
                self._keyring.current, session.id, session.token_id, session.created_at, session.expires_at
            )
        finally:
            self._reserved = self._reserved.minus(session.limits)
        try:
            self.registry.save(session)  # no await since the line above: never counted twice, nor not at all
            session = await self._start(session, token, warm is not None)
        except BaseException:
            await self._teardown(session)
            raise
        return session, token

    def container_spec(self, session: Session, env: Mapping[str, str]) -> ContainerSpec:
        st = self.settings
        return ContainerSpec(session.id, session.node_id, session.image, session.limits,
                             st.socket_dir(session.id), st.forward_port, env)  # fmt: skip

    async def _start(self, session: Session, token: str, warm: bool) -> Session:
        """Listener and container come up side by side; a warm sandbox is already running."""
        path = self.settings.socket_dir(session.id)
        if not warm:
            socket_dir.prepare(path, self.settings.forwarder_binary)
        socket_dir.write_token(path, token)
        if warm:
            await self._listen(session)
            container_id = session.container_id
        else:
            env = {**self.trust_env(session), **session.env, **self.proxy_env(session, token)}
            spec = self.container_spec(session, env)
            starting = asyncio.ensure_future(self._runtime.start(spec))
            try:
                await self._listen(session)
            except BaseException:
                # The docker call cannot be stopped half way: let it finish, so that the teardown that
                # follows finds (and removes) the container instead of racing its creation.
                with contextlib.suppress(Exception):
                    await starting
                raise
            container_id = await starting
        return self.registry.save(replace(session, state=State.READY, container_id=container_id))

    async def _listen(self, session: Session) -> None:
        await self._publisher.wait(self._publisher.put_session(session))
        await _wait_for_path(self.settings.socket_dir(session.id) / socket_dir.SOCKET_NAME, SOCKET_WAIT_S)

    # ---- delete / expire -------------------------------------------------------------------------

    async def delete(self, session_id: str) -> None:
        """End a session. Idempotent: an unknown (already ended) session is not an error."""
        sess.validate_session_id(session_id)
        session = self.registry.find(session_id)
        if session is not None:
            await self._teardown(session)

    async def _teardown(self, session: Session) -> None:
        """Revoke first (ext_authz at once; open connections within the push latency), then remove."""
        self.registry.withdraw(session.id)
        self.liveness.end(session.id, f"session {session.id} ended")
        revoked = self._publisher.deny_all(session)
        try:
            await asyncio.gather(self._runtime.remove(session.id), self._wait_quietly(revoked))
        finally:
            await self._wait_quietly(self._publisher.remove_session(session))
            socket_dir.remove(self.settings.socket_dir(session.id))
            self.registry.forget(session.id)
        log.info("session %s ended", session.id)

    async def _wait_quietly(self, expected: Expected) -> None:
        """Ending a session does not fail because an Envoy is slow or away: it gets the state on reconnect."""
        try:
            await self._publisher.wait(expected, min(self._publisher.apply_timeout, 5.0))
        except SandgateError as exc:
            log.warning("ending a session: %s", exc)

    async def expire_loop(self, interval: float = 1.0) -> None:
        while True:
            now = self._clock()
            for session in self.registry.all():
                if why := session.is_over(now, self.registry.last_active(session)):
                    log.info("session %s ended: %s", session.id, why)
                    with contextlib.suppress(SandgateError):
                        await self._teardown(session)
            await asyncio.sleep(interval)

    # ---- use -----------------------------------------------------------------------------------

    def require_ready(self, session_id: str) -> Session:
        session = self.registry.get(session_id)
        if session.state != State.READY:
            why = f" ({session.failure_reason})" if session.failure_reason else ""
            raise FailedPrecondition(f"session {session_id} is {session.state.value}{why}, not READY")
        return session

    def exec(
        self, session_id: str, argv: Sequence[str], env: Mapping[str, str], stdin: bytes, timeout_s: int
    ) -> AsyncIterator[ExecChunk]:
        session = self.require_ready(session_id)
        if not argv or not argv[0]:
            raise InvalidArgument("must name a program to run", field="argv")
        extra = sess.validate_env(env, limits=self.settings.metadata_limits)
        token = (self.settings.socket_dir(session_id) / "token").read_text()
        full_env = {**self.trust_env(session), **session.env, **extra, **self.proxy_env(session, token)}
        chunks = self._runtime.exec(session_id, argv, full_env, stdin, timeout_s)
        return self._busy_while(session_id, self.liveness.stream(session_id, chunks))

    async def _busy_while(self, session_id: str, chunks: AsyncGenerator[ExecChunk, None]) -> AsyncIterator[ExecChunk]:
        """A session is not idle while an Exec runs, however long it takes. A caller that leaves early
        closes the Exec at once (its process group is killed), not when the generator is collected."""
        self.registry.in_use(session_id, +1)
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    yield chunk
        finally:
            self.registry.in_use(session_id, -1)

    async def write_file(self, session_id: str, path: str, data: bytes) -> int:
        self.require_ready(session_id)
        self.registry.touch(session_id)
        limit = self.settings.max_write_bytes
        if len(data) > limit:
            raise PayloadTooLarge(f"at most {limit} bytes, got {len(data)}", field="data")
        writing = self._runtime.write_file(session_id, scratch_path(path), data, limit)
        try:
            await self.liveness.call(session_id, writing, self._deadline())
        except TimeoutError as exc:
            raise self._too_slow("WriteFile", path) from exc
        return len(data)

    async def read_file(self, session_id: str, path: str) -> AsyncIterator[bytes]:
        self.require_ready(session_id)
        self.registry.touch(session_id)
        reading = self._runtime.read_file(session_id, scratch_path(path), self.settings.max_read_bytes)
        try:
            async with contextlib.aclosing(self.liveness.stream(session_id, reading, self._deadline())) as chunks:
                async for data in chunks:
                    yield data
        except TimeoutError as exc:
            raise self._too_slow("ReadFile", path) from exc

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.settings.file_timeout_s

    def _too_slow(self, call: str, path: str) -> DeadlineExceeded:
        return DeadlineExceeded(f"{call} of {path!r} took longer than {self.settings.file_timeout_s:g} s", field="path")


async def _wait_for_path(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise Unavailable(f"Envoy did not open the listener socket of session {path.parent.name} in time")
        await asyncio.sleep(0.01)
