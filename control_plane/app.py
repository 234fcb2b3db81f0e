"""The control plane's lifecycle: prepare the state directory, wire the parts (`wiring.build`), then start the
servers, tasks and managed Envoy in order; `stop` undoes whatever `start` got to, in reverse."""

from __future__ import annotations

import asyncio
import logging
import threading
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
from control_plane.approvals.sandbox_api import SandboxApi, build_sandbox_api
from control_plane.audit.access_log import AccessLogReceiver
from control_plane.authz.service import AuthorizationService
from control_plane.channel.address import ControlAddress, split_addr
from control_plane.channel.bootstrap import BootstrapOptions, EnvoyTls, bootstrap_text, install_bootstrap
from control_plane.channel.server import start_control_server
from control_plane.config import Settings
from control_plane.domain.destinations import parse_cidrs
from control_plane.envoy_process import (
    EnvoyOptions,
    ManagedEnvoy,
    default_binary,
    default_max_downstream_connections,
    default_max_heap_bytes,
)
from control_plane.host_addresses import host_addresses, watch_host_addresses
from control_plane.sessions.docker_runtime import DockerRuntime
from control_plane.sessions.reconcile import ReconcileReport, reconcile
from control_plane.sessions.rotation import KeyRotation
from control_plane.sessions.runsc_check import check_runsc
from control_plane.sessions.runtime import ContainerRuntime
from control_plane.state_dir import StateDir, prepare_state_dir
from control_plane.wiring import HostFacts, Parts, build
from control_plane.xds.serialize import message_class
from control_plane.xds.server import AdsServer
from control_plane.xds.types import LISTENER

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 17 << 20  # WriteFile takes up to 16 MiB; every other request is far smaller


@dataclass
class Ports:
    grpc: int = 0
    xds: int = 0
    admin: int = 0


def read_host(settings: Settings) -> HostFacts:
    """This machine's own addresses (only when they are to be forbidden) and its size."""
    own = host_addresses() if settings.forbid_host_addresses else ()
    return HostFacts(own_addresses=own, size=config.host_size())


class App:
    """One control plane. Construction does nothing but remember its arguments; `start` makes it serve, and
    `stop` (safe after any partial or failed `start`, and more than once) releases all that `start` took.
    After `start`, `state` and `parts` hold what it prepared and wired; `runtime` None means docker + runsc."""

    def __init__(self, settings: Settings, runtime: ContainerRuntime | None = None) -> None:
        self.settings = settings
        self._runtime = runtime
        self._state: StateDir | None = None
        self._parts: Parts | None = None
        self.reconciled: ReconcileReport | None = None
        self.ports = Ports()
        self.control_address: ControlAddress = settings.control_address  # with the real port once bound
        self.envoy: ManagedEnvoy | None = None
        self._xds: grpc.aio.Server | None = None
        self._api: grpc.aio.Server | None = None
        self._admin: web.AppRunner | None = None
        self._sandbox_api: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Prepare, wire, then make docker and the store agree and restore Envoy's config before any client is
        served. On failure the caller still calls `stop`."""
        s = self.settings
        self._state = state = prepare_state_dir(s)
        self._parts = parts = build(s, state, read_host(s), self._runtime)
        if isinstance(parts.runtime, DockerRuntime):  # a test's runtime has no runsc
            await check_runsc(parts.runtime)
        # First: a sandbox that dies while the rest starts is noticed (reconcile saw the ones before).
        self._tasks.append(asyncio.create_task(parts.exit_watch.run(s.node_id)))
        self.reconciled = await reconcile(parts.registry, parts.runtime, s.node_id, s.state_dir / "sessions")
        parts.publisher.ensure_node(s.node_id)
        parts.manager.republish()
        self.ports.xds = await self._start_xds_server(state, parts)
        bootstrap = self._bootstrap(state)
        if s.manage_envoy:
            await self._start_envoy(bootstrap)
        else:
            install_bootstrap(s.envoy_bootstrap_path, bootstrap)  # for the external Envoy to run
        parts.pool.start()
        self.ports.grpc = await self._start_api_server(state, parts)
        self.ports.admin = await self._start_admin_server(state, parts)
        await self._start_sandbox_api(parts)
        self._tasks.append(asyncio.create_task(parts.manager.expire_loop()))
        if s.forbid_host_addresses:
            self._tasks.append(asyncio.create_task(watch_host_addresses(self._forbid_host_addresses)))
        log.info("sandgate: sessions API on %s, xDS on %s", s.grpc_addr, self.control_address.grpc_target)
        # Serving already: envoy-data-plane's classes (seconds of CPU) load now, not on the first new config.
        threading.Thread(target=message_class, args=(LISTENER,), name="load-envoy-classes", daemon=True).start()

    @property
    def state(self) -> StateDir:
        """The prepared state directory; RuntimeError before `start` prepared it or after `stop`."""
        if self._state is None:
            raise RuntimeError("the control plane is not started")
        return self._state

    @property
    def parts(self) -> Parts:
        """The wired parts; RuntimeError before `start` wired them or after `stop`."""
        if self._parts is None:
            raise RuntimeError("the control plane is not started")
        return self._parts

    def _forbid_host_addresses(self, own: tuple[str, ...]) -> None:
        cidrs = parse_cidrs((*self.settings.forbidden_cidrs, *own), "forbidden_cidrs")
        self.parts.publisher.set_forbidden(cidrs)

    async def _start_xds_server(self, state: StateDir, parts: Parts) -> int:
        checks, nacks = parts.metrics.ext_authz_checks, parts.metrics.xds_nacks
        authz = AuthorizationService(
            parts.registry.view,
            lambda check, decision: checks.labels(decision.reason).inc(),  # positional: the cheaper form
            parts.metrics.ext_authz_seconds.observe,
            parts.approvals.held_check,
            denied=lambda host: parts.egress.policy().is_denied(host),
        )
        als = AccessLogReceiver(parts.decisions, parts.registry)
        ads = AdsServer(parts.cache, lambda type_url: nacks.labels(type_url=type_url).inc())
        handlers = [ads.handler(), authz.handler(), als.handler()]
        self._xds, self.control_address = await start_control_server(self.settings.control_address, state.pki, handlers)
        return self.control_address.port

    def _bootstrap(self, state: StateDir) -> str:
        """Envoy's bootstrap: this node, its admin socket, where the control plane is and (TCP) its certificate."""
        s = self.settings
        tls = EnvoyTls(state.pki.ca.cert_pem, state.pki.envoy) if state.pki else None
        options = BootstrapOptions(
            s.node_id, s.envoy_admin_path, self.control_address, s.xds_api, tls,
            max_downstream_connections=s.envoy_max_downstream_connections or default_max_downstream_connections(),
            max_heap_bytes=s.envoy_max_heap_bytes or default_max_heap_bytes(),
        )  # fmt: skip
        return bootstrap_text(options)

    async def _start_api_server(self, state: StateDir, parts: Parts) -> int:
        self._api = server = grpc.aio.server(
            interceptors=[BearerAuthInterceptor(state.api_token)],
            # WriteFile carries the whole file in one message
            options=[
                ("grpc.max_receive_message_length", max(MAX_REQUEST_BYTES, self.settings.max_write_bytes + (1 << 20))),
                ("grpc.max_send_message_length", paging.MAX_RESPONSE_BYTES),
            ],
        )
        server.add_generic_rpc_handlers([SessionsService(parts.manager, parts.calls).handler()])
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
        return port

    async def _start_admin_server(self, state: StateDir, parts: Parts) -> int:
        keys = KeyRotation(parts.keyring, parts.registry, parts.publisher)
        deps = AdminDeps(
            parts.manager, parts.egress, parts.decisions, parts.cache, parts.metrics, self.settings.node_id, keys,
            parts.approvals, parts.secrets,
        )  # fmt: skip
        self._admin = web.AppRunner(build_admin_app(deps, state.admin_token), access_log=None, shutdown_timeout=1)
        await self._admin.setup()
        host, port = split_addr(self.settings.admin_addr, "admin_addr")
        site = web.TCPSite(self._admin, host, port)
        await site.start()
        return int(self._admin.addresses[0][1])

    async def _start_sandbox_api(self, parts: Parts) -> None:
        """http://sandgate.internal for sandboxes, on a unix socket only root (Envoy) can open."""
        if not parts.publisher.egress.sandbox_api_socket:
            return
        api = SandboxApi(parts.approvals, parts.registry.get, parts.egress.parse_rule)
        self._sandbox_api = web.AppRunner(build_sandbox_api(api), access_log=None, shutdown_timeout=1)
        await self._sandbox_api.setup()
        path = self.settings.sandbox_api_path
        await web.UnixSite(self._sandbox_api, str(path)).start()
        path.chmod(0o600)

    async def _start_envoy(self, bootstrap: str) -> None:
        s = self.settings
        binary = Path(s.envoy_binary) if s.envoy_binary else default_binary()
        options = EnvoyOptions(binary, s.envoy_bootstrap_path, s.state_dir, s.envoy_concurrency)
        self.envoy = ManagedEnvoy(options)
        await self.envoy.start(bootstrap)

    async def stop(self) -> None:
        """Stop taking calls, finish those in flight, then keep (default) or end the sessions; then stop Envoy,
        the control channel, the journal, the store and the thread pools. Each step runs only if `start`
        got to it, so this is safe after any partial start, and a second call does nothing. A step that fails
        is logged and the next ones still run: a stop never leaves Envoy or a server behind."""
        steps = (self._stop_api, self._stop_admin, self._stop_sandbox_api, self._stop_sessions, self._cancel_tasks,
                 self._stop_envoy, self._stop_xds, self._close)  # fmt: skip
        for step in steps:
            try:
                await step()
            except Exception:
                log.exception("stopping the control plane: %s failed; going on", step.__name__)

    async def _stop_api(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            await api.stop(grace=5)

    async def _stop_admin(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            await admin.cleanup()

    async def _stop_sandbox_api(self) -> None:
        if self._sandbox_api is not None:
            api, self._sandbox_api = self._sandbox_api, None
            await api.cleanup()
        if self._parts is not None:
            self._parts.approvals.close()  # held requests are answered (fail closed) before the servers go

    async def _stop_envoy(self) -> None:
        if self.envoy is not None:
            envoy, self.envoy = self.envoy, None
            await envoy.stop()

    async def _stop_xds(self) -> None:
        if self._xds is not None:
            xds, self._xds = self._xds, None
            await xds.stop(grace=1)

    async def _close(self) -> None:
        if self._state is not None:
            state, self._state = self._state, None
            state.close()
        if self._parts is not None:
            parts, self._parts = self._parts, None
            parts.workers.shutdown()

    async def _stop_sessions(self) -> None:
        if self._parts is None:
            return
        parts = self._parts
        await parts.pool.stop()
        if self.settings.end_sessions_on_shutdown:
            for session in parts.registry.all():
                await parts.manager.delete(session.id)

    async def _cancel_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):
                log.error("stopping the control plane: task %s had failed: %r", task.get_name(), outcome)
