"""`build`: settings, a prepared state directory and the host's facts in; every part of the control plane out,
wired to each other. It only constructs: it binds no port, starts no thread or task and writes nothing
(the state directory is prepared before, in `state_dir`; the servers start after, in `app`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from control_plane import config
from control_plane.approvals.book import Approval, ApprovalBook
from control_plane.approvals.desk import ApprovalDesk
from control_plane.approvals.outcome import decision_event
from control_plane.audit.decisions import DecisionLog, sandbox_exit_event
from control_plane.channel.address import split_addr
from control_plane.config import HostSize, Settings
from control_plane.credentials.service import SecretService
from control_plane.domain.destinations import parse_cidrs
from control_plane.domain.session import Session
from control_plane.envoy_contract import SOCKET_NAME
from control_plane.inspection.authority import SessionAuthorities
from control_plane.inspection.sources import InspectionSources
from control_plane.metrics import Metrics, new_metrics
from control_plane.sessions.docker_runtime import DockerRuntime, RuntimeWorkers
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.exits import ExitWatch
from control_plane.sessions.keyring import Keyring
from control_plane.sessions.liveness import Liveness
from control_plane.sessions.manager import ManagerSettings, SessionManager
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.runtime import ContainerRuntime, SandboxExit
from control_plane.sessions.sandbox_calls import SandboxCalls
from control_plane.state_dir import StateDir
from control_plane.workers import FairWorkers, Workers
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.limits import TenantLimits
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.publisher import ConfigPublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostFacts:
    """What the control plane reads of the machine it runs on: its own addresses (forbidden to sandboxes when
    `forbid_host_addresses`) and its size (the admission defaults)."""

    own_addresses: tuple[str, ...]
    size: HostSize


@dataclass(frozen=True)
class AppWorkers:
    """The thread pools: the runtime's (control plane's own, and fair per session), and the audit queries'."""

    runtime: RuntimeWorkers
    audit: Workers

    def shutdown(self) -> None:
        """Stop every pool; calls in flight finish on their threads."""
        for workers in (self.runtime.control, self.runtime.sessions.workers, self.audit):
            workers.shutdown()


@dataclass(frozen=True)
class Parts:
    """The control plane's parts, wired; `app.App` starts and stops what runs of them."""

    workers: AppWorkers
    metrics: Metrics  # this App's own registry: several Apps may share a process
    decisions: DecisionLog
    cache: SnapshotCache
    registry: SessionRegistry
    keyring: Keyring
    runtime: ContainerRuntime
    publisher: ConfigPublisher
    egress: EgressEditor
    pool: WarmPool
    manager: SessionManager
    calls: SandboxCalls
    exit_watch: ExitWatch
    approvals: ApprovalDesk
    secrets: SecretService


def build(
    settings: Settings,
    state: StateDir,
    host: HostFacts,
    runtime: ContainerRuntime | None = None,
    clock: Callable[[], float] = time.time,
) -> Parts:
    """Wire the parts over `state`'s store and journal; `runtime` None: docker with runsc; `clock`: seconds since
    the epoch, for session lifetimes and key ages. Raises InvalidArgument for an address or range in `settings`
    that does not parse."""
    s = settings
    workers = _workers(s)
    metrics = new_metrics()
    decisions = DecisionLog(state.journal, workers.audit, metrics.audit)
    state.journal.count_lost_with(lambda count: decisions.lost("write-failed", count))
    cache = SnapshotCache()
    registry = SessionRegistry(state.store, clock)
    keyring = Keyring(state.store, clock, s.max_ttl_seconds)
    runtime = runtime or DockerRuntime(s.container_runtime, workers.runtime)
    policy: list[EgressEditor] = []  # the publisher renders with the editor's policy; the editor needs the publisher
    publisher = ConfigPublisher(
        cache, egress_settings(s, host), lambda sid: s.state_dir / "sessions" / sid / SOCKET_NAME, keyring.jwks,
        lambda: policy[0].policy(), s.apply_timeout_seconds, _inspection(s, state),
    )  # fmt: skip
    egress = EgressEditor(
        registry, state.store, publisher, s.allow_broad_wildcards, config.rule_limits(s),
        lambda write, seconds: metrics.admin_write_ack_seconds.labels(write=write).observe(seconds),
        secret_exists=state.vault.exists,
    )  # fmt: skip
    policy.append(egress)
    secrets = SecretService(state.vault, registry, publisher, egress.policy)
    manager_settings = _manager_settings(s, state, host)
    pool = WarmPool(runtime, s.warm_pool_size, manager_settings.container_spec, state.forwarder)
    liveness = Liveness()
    manager = SessionManager(
        manager_settings, registry, runtime, publisher, keyring, egress.policy, clock, pool, liveness,
        metrics=metrics.sessions, secret_exists=state.vault.exists,
    )  # fmt: skip
    calls = SandboxCalls(
        manager_settings, registry, runtime, liveness, metrics.sessions.exec_seconds.observe, publisher.inspects
    )

    def sandbox_exited(session: Session, ended: SandboxExit) -> None:
        metrics.sandbox_exits.labels(cause=ended.cause).inc()
        decisions.record_many([sandbox_exit_event(session.id, ended.cause, time.time())])

    exit_watch = ExitWatch(runtime, registry, liveness, pool, sandbox_exited)
    approvals = _approvals(s, registry, egress, decisions)
    parts = Parts(workers, metrics, decisions, cache, registry, keyring, runtime, publisher, egress, pool,
                  manager, calls, exit_watch, approvals, secrets)  # fmt: skip
    _gauges(parts, s.node_id)
    return parts


def _inspection(s: Settings, state: StateDir) -> InspectionSources:
    """HTTPS inspection's sources: the sessions' CAs (kept in `state.inspect_dir`, each session's bundle in its
    directory), the upstream trust store, and the stored secrets' header values."""
    authorities = SessionAuthorities(state.inspect_dir, lambda sid: s.state_dir / "sessions" / sid, state.system_bundle)
    return InspectionSources(authorities, state.upstream_trust, state.vault.injections)


def _approvals(s: Settings, registry: SessionRegistry, egress: EgressEditor, decisions: DecisionLog) -> ApprovalDesk:
    """The desk where ASK sessions' requests and sandboxes' proposals wait for an operator."""

    async def add_rule(session_id: str, rule: dict[str, object]) -> None:
        await egress.add(session_id, rule, s.apply_timeout_seconds)

    def record(approval: Approval) -> None:
        decisions.record_many([decision_event(approval, time.time())])

    return ApprovalDesk(
        ApprovalBook(s.max_open_approvals), s.approval_timeout_seconds, add_rule, record,
        live=lambda session_id: registry.find(session_id) is not None,
        denied=lambda host: egress.policy().is_denied(host), max_held=s.max_held_requests,
    )  # fmt: skip


def egress_settings(s: Settings, host: HostFacts) -> EgressSettings:
    """What every session's Envoy config shares, from the settings and this host's own addresses."""
    own = host.own_addresses if s.forbid_host_addresses else ()
    return EgressSettings(
        dns_resolvers=tuple(split_addr(r, "dns_resolvers") for r in s.dns_resolvers),
        dns_lookup_family=s.dns_lookup_family,
        forbidden_cidrs=parse_cidrs((*s.forbidden_cidrs, *own), "forbidden_cidrs"),
        forbidden_exceptions=parse_cidrs(s.forbidden_exceptions, "forbidden_exceptions"),
        authz_every_connect=s.authz_every_connect,
        max_destinations=s.max_destinations,
        stream_idle_timeout_s=s.stream_idle_timeout_seconds,
        limits=tenant_limits(s),
        # Envoy reaches the sandbox API's unix socket only on this host (a TCP control channel: none).
        sandbox_api_socket=str(s.sandbox_api_path) if s.control_address.path is not None else "",
        approval_timeout_s=s.approval_timeout_seconds,
    )


def tenant_limits(s: Settings) -> TenantLimits:
    """What one session may take of Envoy, from the settings."""
    return TenantLimits(
        max_connections=s.session_max_connections, requests_per_second=s.session_requests_per_second,
        request_burst=s.session_request_burst, tunnels_per_second=s.session_tunnels_per_second,
        tunnel_burst=s.session_tunnel_burst, buffer_bytes=s.connection_buffer_bytes,
        egress_max_connections=s.egress_max_connections, egress_max_pending_requests=s.egress_max_pending_requests,
        egress_max_requests=s.egress_max_requests, egress_max_retries=s.egress_max_retries,
    )  # fmt: skip


def _manager_settings(s: Settings, state: StateDir, host: HostFacts) -> ManagerSettings:
    capacity = config.capacity(s, host.size)
    log.info("admission: at most %d sessions holding %d MiB and %g CPUs in all",
             capacity.max_sessions, capacity.total_memory_mb, capacity.total_cpus)  # fmt: skip
    return ManagerSettings(
        node_id=s.node_id, state_dir=s.state_dir, forwarder_binary=state.forwarder, default_image=s.default_image,
        forward_port=s.forward_port, default_ttl_seconds=s.default_ttl_seconds,
        max_ttl_seconds=s.max_ttl_seconds, capacity=capacity, default_limits=config.default_limits(s),
        bounds=config.limit_bounds(s), rule_limits=config.rule_limits(s),
        metadata_limits=config.metadata_limits(s), allow_broad_wildcards=s.allow_broad_wildcards,
        max_write_bytes=s.max_write_bytes, max_read_bytes=s.max_read_bytes,
        file_timeout_s=s.file_timeout_seconds,
    )  # fmt: skip


def _workers(s: Settings) -> AppWorkers:
    control = Workers("control", s.control_workers)
    sessions = FairWorkers(Workers("session", s.session_workers), s.session_workers_per_session)
    connections = s.control_workers + s.session_workers + 1
    runtime = RuntimeWorkers(control, sessions, s.docker_timeout_seconds, connections)
    return AppWorkers(runtime, Workers("audit", s.audit_workers))


def _gauges(parts: Parts, node: str) -> None:
    metrics, cache = parts.metrics, parts.cache
    metrics.gauge("sandgate_sessions", "Live sessions", lambda: len(parts.registry))
    metrics.gauge("sandgate_envoy_streams", "Connected Envoy xDS streams", lambda: len(cache.streams(node)))
    metrics.gauge("sandgate_envoy_config_acked", "1 if Envoy ACKed the current config", lambda: cache.in_sync(node))
    pool = parts.pool
    metrics.gauge("sandgate_warm_pool_ready", "Started sandboxes waiting in the warm pool", lambda: pool.available)
