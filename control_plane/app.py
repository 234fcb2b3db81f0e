"""Wires config to store, cache, servers, session manager and the managed Envoy; owns their lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from control_plane import config
from control_plane.admin.routes import AdminDeps, build_admin_app
from control_plane.api import paging
from control_plane.api.auth import BearerAuthInterceptor
from control_plane.api.gen.sandgate.v1 import sessions_pb2
from control_plane.api.servicer import SERVICE as SESSIONS_SERVICE
from control_plane.api.servicer import SessionsService
from control_plane.audit.access_log import AccessLogReceiver
from control_plane.audit.decisions import DecisionLog, sandbox_exit_event
from control_plane.audit.journal import DecisionJournal
from control_plane.authz.decide import CheckInput, Decision
from control_plane.authz.service import AuthorizationService
from control_plane.channel.address import ControlAddress, split_addr
from control_plane.channel.bootstrap import BootstrapOptions, EnvoyTls, bootstrap_text, install_bootstrap
from control_plane.channel.pki import ChannelPki, load_or_mint
from control_plane.channel.server import start_control_server
from control_plane.config import Settings
from control_plane.credentials.service import SecretService
from control_plane.credentials.vault import SecretVault
from control_plane.domain.destinations import parse_cidrs
from control_plane.domain.session import Session
from control_plane.envoy_process import (
    EnvoyOptions,
    ManagedEnvoy,
    default_binary,
    default_max_downstream_connections,
    default_max_heap_bytes,
)
from control_plane.host_addresses import host_addresses, watch_host_addresses
from control_plane.inspection.authority import SessionAuthorities
from control_plane.inspection.sources import InspectionSources, read_trust
from control_plane.metrics import Registry
from control_plane.secrets import load_or_create_token
from control_plane.sessions import socket_dir
from control_plane.sessions.docker_runtime import DockerRuntime, RuntimeWorkers
from control_plane.sessions.egress import EgressEditor
from control_plane.sessions.exits import ExitWatch
from control_plane.sessions.keyring import Keyring
from control_plane.sessions.manager import ManagerSettings, SessionManager
from control_plane.sessions.pool import WarmPool
from control_plane.sessions.reconcile import reconcile
from control_plane.sessions.registry import SessionRegistry
from control_plane.sessions.rotation import KeyRotation
from control_plane.sessions.runtime import ContainerRuntime, ContainerSpec, SandboxExit
from control_plane.store import Store
from control_plane.workers import FairWorkers, Workers
from control_plane.xds.builders import EgressSettings
from control_plane.xds.builders.limits import TenantLimits
from control_plane.xds.cache import SnapshotCache
from control_plane.xds.publisher import ConfigPublisher
from control_plane.xds.server import AdsServer

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 17 << 20  # WriteFile takes up to 16 MiB; every other request is far smaller


@dataclass(frozen=True)
class AppWorkers:
    """The thread pools: the runtime's (control plane's own, and fair per session), and the audit queries'."""

    runtime: RuntimeWorkers
    audit: Workers

    def shutdown(self) -> None:
        for workers in (self.runtime.control, self.runtime.sessions.workers, self.audit):
            workers.shutdown()


def tenant_limits(s: Settings) -> TenantLimits:
    return TenantLimits(
        max_connections=s.session_max_connections, requests_per_second=s.session_requests_per_second,
        request_burst=s.session_request_burst, tunnels_per_second=s.session_tunnels_per_second,
        tunnel_burst=s.session_tunnel_burst, buffer_bytes=s.connection_buffer_bytes,
        egress_max_connections=s.egress_max_connections, egress_max_pending_requests=s.egress_max_pending_requests,
        egress_max_requests=s.egress_max_requests, egress_max_retries=s.egress_max_retries,
    )  # fmt: skip


@dataclass
class Ports:
    grpc: int = 0
    xds: int = 0
    admin: int = 0


class App:
    def __init__(self, settings: Settings, runtime: ContainerRuntime | None = None) -> None:
        self.settings = settings
        state = settings.state_dir
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        state.chmod(0o700)  # tokens, keys, databases and every session's socket and token: root only
        socket_dir.prepare_root(state / "sessions")
        settings.envoy_dir.mkdir(exist_ok=True, mode=0o700)
        settings.envoy_dir.chmod(0o700)  # Envoy's admin socket, the xDS socket, the bootstrap: root only
        self.api_token = load_or_create_token(settings.api_token, state / "api-token")
        self.admin_token = load_or_create_token(settings.admin_token, state / "admin-token")
        self.store = Store(state / "sandgate.db")
        self.keyring = Keyring(self.store, time.time, settings.max_ttl_seconds)
        self.cache = SnapshotCache()
        self.registry = SessionRegistry(self.store, time.time)
        self.metrics = Registry()
        self.journal = DecisionJournal(
            state / "decisions.db", settings.decision_retention, settings.decision_retention_per_session
        )
        self.workers = self._workers()
        self.decisions = DecisionLog(
            self.journal,
            self.workers.audit,
            self.metrics.counter("sandgate_decisions_total", "Egress decisions", "verdict", "reason"),
        )
        self._checks = self.metrics.counter("sandgate_ext_authz_checks_total", "ext_authz checks", "reason")
        self._exits = self.metrics.counter("sandgate_sandbox_exits_total", "Sandboxes that died", "cause")
        self.runtime: ContainerRuntime = runtime or DockerRuntime(settings.container_runtime, self.workers.runtime)
        self.manager = self._manager(self.runtime)
        self.exit_watch = ExitWatch(
            self.runtime, self.registry, self.manager.liveness, lambda: self.manager.pool, self._sandbox_exited
        )
        self._gauges()
        self.ports = Ports()
        self.control_address: ControlAddress = settings.control_address  # with the real port once bound
        self.pki = self._channel_pki()
        self.envoy: ManagedEnvoy | None = None
        self._servers: list[grpc.aio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._admin: web.AppRunner | None = None

    def _workers(self) -> AppWorkers:
        s = self.settings
        control = Workers("control", s.control_workers)
        sessions = FairWorkers(Workers("session", s.session_workers), s.session_workers_per_session)
        connections = s.control_workers + s.session_workers + 1
        runtime = RuntimeWorkers(control, sessions, s.docker_timeout_seconds, connections)
        return AppWorkers(runtime, Workers("audit", s.audit_workers))

    def _sandbox_exited(self, session: Session, ended: SandboxExit) -> None:
        self._exits.inc(cause=ended.cause)
        self.decisions.record_many([sandbox_exit_event(session.id, ended.cause, time.time())])

    def _manager(self, runtime: ContainerRuntime) -> SessionManager:
        s = self.settings
        own = host_addresses() if s.forbid_host_addresses else ()
        egress = EgressSettings(
            dns_resolvers=tuple(split_addr(r, "dns_resolvers") for r in s.dns_resolvers),
            dns_lookup_family=s.dns_lookup_family,
            forbidden_cidrs=parse_cidrs((*s.forbidden_cidrs, *own), "forbidden_cidrs"),
            forbidden_exceptions=parse_cidrs(s.forbidden_exceptions, "forbidden_exceptions"),
            authz_every_connect=s.authz_every_connect,
            max_destinations=s.max_destinations,
            stream_idle_timeout_s=s.stream_idle_timeout_seconds,
            limits=tenant_limits(s),
        )
        forwarder = self._forwarder_path()
        publisher = ConfigPublisher(
            self.cache, egress, lambda sid: s.state_dir / "sessions" / sid / "proxy.sock", self.keyring.jwks,
            lambda: self.egress.policy(), s.apply_timeout_seconds, self._inspection(),
        )  # fmt: skip
        self.egress = EgressEditor(
            self.registry, self.store, publisher, s.allow_broad_wildcards, config.rule_limits(s), self.vault.exists
        )
        self.secrets = SecretService(self.vault, self.registry, publisher, self.egress.policy)
        capacity = config.capacity(s, config.host_size())
        log.info("admission: at most %d sessions holding %d MiB and %g CPUs in all",
                 capacity.max_sessions, capacity.total_memory_mb, capacity.total_cpus)  # fmt: skip
        settings = ManagerSettings(
            node_id=s.node_id, state_dir=s.state_dir, forwarder_binary=forwarder, default_image=s.default_image,
            forward_port=s.forward_port, default_ttl_seconds=s.default_ttl_seconds,
            max_ttl_seconds=s.max_ttl_seconds, capacity=capacity, default_limits=config.default_limits(s),
            bounds=config.limit_bounds(s), rule_limits=config.rule_limits(s),
            metadata_limits=config.metadata_limits(s), allow_broad_wildcards=s.allow_broad_wildcards,
            max_write_bytes=s.max_write_bytes, max_read_bytes=s.max_read_bytes,
            file_timeout_s=s.file_timeout_seconds,
        )  # fmt: skip
        self.publisher = publisher
        return SessionManager(
            settings, self.registry, runtime, publisher, self.keyring, self.egress.policy,
            secret_exists=self.vault.exists,
        )  # fmt: skip

    def _inspection(self) -> InspectionSources:
        s = self.settings
        system, trusted = read_trust(s.system_ca_file, s.upstream_ca_files)
        authorities = SessionAuthorities(s.state_dir / "inspect", lambda sid: s.state_dir / "sessions" / sid, system)
        key_file = Path(s.secrets_key_file) if s.secrets_key_file else s.state_dir / "keys" / "secrets.key"
        self.vault = SecretVault(s.state_dir / "secrets", key_file)
        self.inspection = InspectionSources(authorities, trusted, self.vault.injections)
        return self.inspection

    def _channel_pki(self) -> ChannelPki | None:
        """Over TCP, Envoy and the control plane authenticate each other with certificates kept in the state dir."""
        if self.settings.control_address.path is not None:
            return None
        return load_or_mint(self.settings.state_dir / "tls", self.settings.node_id, datetime.datetime.now(datetime.UTC))

    def _gauges(self) -> None:
        node = self.settings.node_id
        self.metrics.gauge("sandgate_sessions", "Live sessions", lambda: len(self.registry))
        self.metrics.gauge(
            "sandgate_envoy_streams", "Connected Envoy xDS streams", lambda: len(self.cache.streams(node))
        )
        self.metrics.gauge(
            "sandgate_envoy_config_acked", "1 if Envoy ACKed the current config", lambda: self.cache.in_sync(node)
        )
        self.metrics.gauge(
            "sandgate_warm_pool_ready",
            "Started sandboxes waiting in the warm pool",
            lambda: self.manager.pool.available if self.manager.pool else 0,
        )

    async def start(self) -> None:
        """Make docker and the store agree and restore Envoy's config before any client is served."""
        s = self.settings
        self._install_forwarder()
        # First: a sandbox that dies while the rest starts is noticed (reconcile saw the ones before).
        self._tasks.append(asyncio.create_task(self.exit_watch.run(s.node_id)))
        self.reconciled = await reconcile(self.registry, self.runtime, s.node_id, s.state_dir / "sessions")
        self.publisher.ensure_node(s.node_id)
        self.manager.republish()
        self.ports.xds = await self._start_xds_server()
        bootstrap = self._bootstrap()
        if s.manage_envoy:
            await self._start_envoy(bootstrap)
        else:
            install_bootstrap(s.envoy_bootstrap_path, bootstrap)  # for the external Envoy to run
        self.manager.pool = WarmPool(self.runtime, s.warm_pool_size, self._pool_spec, self._forwarder_path())
        self.manager.pool.start()
        self.ports.grpc = await self._start_api_server()
        self.ports.admin = await self._start_admin_server()
        self._tasks.append(asyncio.create_task(self.manager.expire_loop()))
        if s.forbid_host_addresses:
            self._tasks.append(asyncio.create_task(watch_host_addresses(self._forbid_host_addresses)))
        log.info("sandgate: sessions API on %s, xDS on %s", s.grpc_addr, self.control_address.grpc_target)

    def _forbid_host_addresses(self, own: tuple[str, ...]) -> None:
        cidrs = parse_cidrs((*self.settings.forbidden_cidrs, *own), "forbidden_cidrs")
        self.publisher.set_forbidden(cidrs)

    def _pool_spec(self, session_id: str) -> ContainerSpec:
        st = self.manager.settings
        return ContainerSpec(session_id, st.node_id, st.default_image, st.default_limits,
                             st.socket_dir(session_id), st.forward_port, {})  # fmt: skip

    def _forwarder_path(self) -> Path:
        return self.settings.state_dir / "bin" / "sandgate-forward"

    def _install_forwarder(self) -> None:
        src = self.settings.forwarder_binary
        if not src.exists():
            raise FileNotFoundError(f"the sandbox forwarder {src} is missing; run `make setup` first")
        dst = self.settings.state_dir / "bin" / "sandgate-forward"
        dst.parent.mkdir(exist_ok=True)
        tmp = dst.with_suffix(".new")
        shutil.copy2(src, tmp)
        tmp.chmod(0o755)
        tmp.replace(dst)

    async def _start_xds_server(self) -> int:
        authz = AuthorizationService(self.registry.view, self._record_check)
        als = AccessLogReceiver(self.decisions, self.registry)
        handlers = [AdsServer(self.cache).handler(), authz.handler(), als.handler()]
        server, self.control_address = await start_control_server(self.settings.control_address, self.pki, handlers)
        self._servers.append(server)
        return self.control_address.port

    def _bootstrap(self) -> str:
        """Envoy's bootstrap: this node, its admin socket, where the control plane is and (TCP) its certificate."""
        s = self.settings
        tls = EnvoyTls(self.pki.ca.cert_pem, self.pki.envoy) if self.pki else None
        options = BootstrapOptions(
            s.node_id, s.envoy_admin_path, self.control_address, s.xds_api, tls,
            max_downstream_connections=s.envoy_max_downstream_connections or default_max_downstream_connections(),
            max_heap_bytes=s.envoy_max_heap_bytes or default_max_heap_bytes(),
        )  # fmt: skip
        return bootstrap_text(options)

    async def _start_api_server(self) -> int:
        server = grpc.aio.server(
            interceptors=[BearerAuthInterceptor(self.api_token)],
            # WriteFile carries the whole file in one message
            options=[
                ("grpc.max_receive_message_length", max(MAX_REQUEST_BYTES, self.settings.max_write_bytes + (1 << 20))),
                ("grpc.max_send_message_length", paging.MAX_RESPONSE_BYTES),
            ],
        )
        server.add_generic_rpc_handlers([SessionsService(self.manager).handler()])
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        await health_servicer.set(SESSIONS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        names = (
            sessions_pb2.DESCRIPTOR.services_by_name["Sessions"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
        port: int = server.add_insecure_port(self.settings.grpc_addr)
        await server.start()
        self._servers.append(server)
        return port

    def _record_check(self, check: CheckInput, decision: Decision) -> None:
        self._checks.inc(reason=decision.reason)

    async def _start_admin_server(self) -> int:
        keys = KeyRotation(self.keyring, self.registry, self.publisher)
        deps = AdminDeps(
            self.manager, self.egress, self.decisions, self.cache, self.metrics, self.settings.node_id, keys,
            self.secrets,
        )  # fmt: skip
        self._admin = web.AppRunner(build_admin_app(deps, self.admin_token), access_log=None, shutdown_timeout=1)
        await self._admin.setup()
        host, port = split_addr(self.settings.admin_addr, "admin_addr")
        site = web.TCPSite(self._admin, host, port)
        await site.start()
        return int(self._admin.addresses[0][1])

    async def _start_envoy(self, bootstrap: str) -> None:
        s = self.settings
        binary = Path(s.envoy_binary) if s.envoy_binary else default_binary()
        options = EnvoyOptions(binary, s.envoy_bootstrap_path, s.state_dir, s.envoy_concurrency)
        self.envoy = ManagedEnvoy(options)
        await self.envoy.start(bootstrap)

    async def stop(self) -> None:
        """Stop taking calls, finish those in flight, then keep (default) or end the sessions."""
        xds_server, *api_servers = self._servers
        for server in api_servers:
            await server.stop(grace=5)
        if self._admin:
            await self._admin.cleanup()
        if self.manager.pool:
            await self.manager.pool.stop()
        if self.settings.end_sessions_on_shutdown:
            for session in self.registry.all():
                await self.manager.delete(session.id)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.envoy:
            await self.envoy.stop()
        await xds_server.stop(grace=1)
        self.journal.close()
        self.store.close()
        self.workers.shutdown()
