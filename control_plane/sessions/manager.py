"""Session lifecycle: create, end and expire sandboxes, keeping store, Envoy and docker in step."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from control_plane.domain import session as sess
from control_plane.domain import tokens
from control_plane.domain.capacity import Capacity, Usage, admit, usage_of
from control_plane.domain.expansion import route_size_problem
from control_plane.domain.policy import Policy, with_defaults
from control_plane.domain.rules import EgressRule, RuleLimits, check_credentials, parse_rules
from control_plane.domain.session import LimitBounds, Limits, MetadataLimits, Session, State
from control_plane.envoy_contract import SOCKET_NAME
from control_plane.errors import (
    InvalidArgument,
    SandgateError,
    Unavailable,
)
from control_plane.inspection.authority import SANDBOX_BUNDLE
from control_plane.metrics import SessionMetrics
from control_plane.sessions import socket_dir
from control_plane.sessions.keyring import Keyring
from control_plane.sessions.liveness import Liveness
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerRuntime, ContainerSpec
from control_plane.xds.publisher import ConfigPublisher, Expected

TRUST_VARIABLES = (
    "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT", "GIT_SSL_CAINFO",
)  # fmt: skip
log = logging.getLogger(__name__)
SOCKET_WAIT_S = 5.0


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
    on_unlisted: str = "DENY"


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
        """The directory of every session's directory."""
        return self.state_dir / "sessions"

    def socket_dir(self, session_id: str) -> Path:
        """The session's directory: its listener socket, token and forwarder; mounted at /run/sandgate."""
        return self.sessions_dir / session_id

    def container_spec(
        self,
        session_id: str,
        image: str | None = None,
        limits: Limits | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ContainerSpec:
        """The one place a sandbox's container is described: this node's, mounting the session's directory.
        Without `image` and `limits`, the defaults (what the warm pool starts)."""
        return ContainerSpec(session_id, self.node_id, image or self.default_image, limits or self.default_limits,
                             self.socket_dir(session_id), self.forward_port, env or {})  # fmt: skip


def proxy_env(session_id: str, token: str, forward_port: int) -> dict[str, str]:
    """The environment that points a sandbox's clients at its forwarder, with the session's token."""
    url = f"http://sandgate:{token}@127.0.0.1:{forward_port}"
    no_proxy = "localhost,127.0.0.1"
    return {
        "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
        "NO_PROXY": no_proxy, "no_proxy": no_proxy, "SANDGATE_SESSION_ID": session_id,
    }  # fmt: skip


def trust_env(inspects: bool) -> dict[str, str]:
    """With inspection, common clients read the session's bundle (system CAs and its own CA) from these
    variables; the session's and the caller's own values go over them (a client matrix test brings its own CA)."""
    return dict.fromkeys(TRUST_VARIABLES, SANDBOX_BUNDLE) if inspects else {}


class SessionManager:
    """Session lifecycle: create (cold, or from the warm pool), end, expire, and republish after a restart.
    Keeps the store, the snapshot cache (hence Envoy) and the container runtime in step. Exec and file calls
    on a session's sandbox are `sandbox_calls.SandboxCalls`'."""

    def __init__(
        self,
        settings: ManagerSettings,
        registry: SessionRegistry,
        runtime: ContainerRuntime,
        publisher: ConfigPublisher,
        keyring: Keyring,
        policy: Callable[[], Policy],
        clock: Callable[[], float] = time.time,
        pool: WarmPool | None = None,
        liveness: Liveness | None = None,
        metrics: SessionMetrics | None = None,
        secret_exists: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self._secret_exists = secret_exists
        self.settings = settings
        self._metrics = metrics
        self.registry = registry
        self._runtime = runtime
        self._publisher = publisher
        self._keyring = keyring
        self._policy = policy
        self._clock = clock
        self._reserved = Usage()  # admitted sessions not yet in the registry
        self.pool = pool  # started sandboxes that `create` claims; None: every create starts one
        # Ends the calls in flight (sandbox_calls) when a session ends or its sandbox dies.
        self.liveness = liveness or Liveness()

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
            on_unlisted=sess.validate_on_unlisted(req.on_unlisted),
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
        """Start a sandbox (or claim a warm one); returns the READY session and its token, a signed JWT that
        is returned here only (it is also written, 0400, into the session's directory for the sandbox).
        READY only once Envoy has ACKed the session's listener and opened its socket.

        Everything is validated, then capacity is checked, before anything is created. Raises:
        - InvalidArgument, naming the field: a bad TTL, image (also one not on this host), limit, label,
          env or rule, or rules over the limits;
        - CapacityExhausted, naming what is exhausted (sessions, memory, CPUs);
        - Rejected: Envoy NACKed the session's listener or routes;
        - NotApplied: Envoy did not apply them within `apply_timeout`;
        - Unavailable: no Envoy of this node is connected, Envoy opened no socket within SOCKET_WAIT_S, or
          the container runtime failed.
        On any failure (cancellation included) nothing is left: no row, container, directory or config.
        Counted and timed by how the sandbox started (warm or cold), and failures by their error code."""
        started = time.monotonic()
        try:
            session, token, warm = await self._create(req)
        except Exception as exc:
            if self._metrics:
                reason = exc.code if isinstance(exc, SandgateError) else "internal"
                self._metrics.create_failures.labels(reason=reason).inc()
            raise
        if self._metrics:
            start = "warm" if warm else "cold"
            self._metrics.create_seconds.labels(start=start).observe(time.monotonic() - started)
            self._metrics.created.labels(start=start).inc()
        return session, token

    async def _create(self, req: CreateRequest) -> tuple[Session, str, bool]:
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
            await self._add(session)
        finally:
            # No await since `_add` indexed it: never counted twice, nor not at all.
            self._reserved = self._reserved.minus(session.limits)
        try:
            session = await self._start(session, token, warm is not None)
        except BaseException:
            await self._teardown(session)
            raise
        return session, token, warm is not None

    async def _add(self, session: Session) -> None:
        """Register a new session; if the store cannot take it, what was claimed for it is removed."""
        try:
            await self.registry.add(session)
        except BaseException:
            await self._teardown(session)
            raise

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
            env = {
                **trust_env(self._publisher.inspects(session)), **session.env,
                **proxy_env(session.id, token, self.settings.forward_port),
            }  # fmt: skip
            spec = self.settings.container_spec(session.id, session.image, session.limits, env)
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
        return await self.registry.save(replace(session, state=State.READY, container_id=container_id))

    async def _listen(self, session: Session) -> None:
        await self._publisher.wait(self._publisher.put_session(session))
        await _wait_for_path(self.settings.socket_dir(session.id) / SOCKET_NAME, SOCKET_WAIT_S)

    # ---- delete / expire -------------------------------------------------------------------------

    async def delete(self, session_id: str) -> None:
        """End a session: its token is refused at once, its connections within the push latency, then its
        sandbox, directory, config and row go. Idempotent: an unknown (already ended) session is not an error;
        InvalidArgument for a malformed id. An Envoy that is slow or away does not make it fail."""
        sess.validate_session_id(session_id)
        session = self.registry.find(session_id)
        if session is not None:
            await self._teardown(session)
            self._count_deleted("requested")

    def _count_deleted(self, reason: str) -> None:
        if self._metrics:
            self._metrics.deleted.labels(reason=reason).inc()

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
            await self.registry.forget(session.id)
        log.info("session %s ended", session.id, extra={"session_id": session.id})

    async def _wait_quietly(self, expected: Expected) -> None:
        """Ending a session does not fail because an Envoy is slow or away: it gets the state on reconnect."""
        try:
            await self._publisher.wait(expected, min(self._publisher.apply_timeout, 5.0))
        except SandgateError as exc:
            log.warning("ending a session: %s", exc)

    async def expire_loop(self, interval: float = 1.0) -> None:
        """Every `interval` seconds, end the sessions past their TTL or idle timeout; runs until cancelled."""
        while True:
            now = self._clock()
            for session in self.registry.all():
                if why := session.is_over(now, self.registry.last_active(session)):
                    log.info("session %s ended: %s", session.id, why, extra={"session_id": session.id, "reason": why})
                    with contextlib.suppress(SandgateError):
                        await self._teardown(session)
                        self._count_deleted(why)
            await asyncio.sleep(interval)


async def _wait_for_path(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise Unavailable(f"Envoy did not open the listener socket of session {path.parent.name} in time")
        await asyncio.sleep(0.01)
