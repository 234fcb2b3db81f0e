"""The real control plane (admin and gRPC servers, xDS, its managed Envoy) in this process, over the in-memory
runtime: the service tier's stand-in for a `sandgate serve` with dockerd. It runs on an event loop of its own in
a thread, so that tests call it with the same blocking clients as the e2e tier's subprocess."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from control_plane.app import App
from control_plane.config import Settings
from tests.support.no_sandbox import NoSandboxRuntime
from tests.support.service import ServiceCalls

T = TypeVar("T")


class InProcessSandgate(ServiceCalls):
    """`App` with `NoSandboxRuntime` on 127.0.0.1 (ports chosen by the kernel) and a state dir of its own.

    Offers what tests use of `SandgateProcess`: `admin`, `client`, `state_dir`, `node_id`, the ports."""

    def __init__(self, state_dir: Path, dns_port: int, **settings: Any) -> None:
        self.state_dir = state_dir
        self.node_id = f"service-{id(self):x}"
        self.api_token, self.admin_token = "test-api-token", "test-admin-token"
        self.settings = Settings(
            state_dir=state_dir, grpc_addr="127.0.0.1:0", admin_addr="127.0.0.1:0", node_id=self.node_id,
            api_token=self.api_token, admin_token=self.admin_token, dns_resolvers=(f"127.0.0.1:{dns_port}",),
            forbidden_exceptions=("127.0.0.1/32",), warm_pool_size=0, **settings,
        )  # fmt: skip
        self.runtime = NoSandboxRuntime(images={self.settings.default_image})
        self.app: App | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandgate-in-process", daemon=True)

    def start(self) -> InProcessSandgate:
        self._thread.start()
        self.app = App(self.settings, runtime=self.runtime)
        self.run(self.app.start())
        return self

    def stop(self) -> None:
        if self.app is not None:
            self.run(self.app.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the control plane's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def grpc_port(self) -> int:
        assert self.app is not None
        return self.app.ports.grpc

    @property
    def admin_port(self) -> int:
        assert self.app is not None
        return self.app.ports.admin

    @property
    def envoy_pid(self) -> int:
        assert self.app is not None and self.app.envoy is not None and self.app.envoy.pid is not None
        return self.app.envoy.pid
