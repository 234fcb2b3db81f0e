"""Runs the real control plane (with its managed Envoy) as a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from control_plane.client import SessionsClient
from tests.support.envoy_admin import envoy_admin_get


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SandgateProcess:
    SERVE = ("control_plane", "serve")  # what `python -m` runs, before `--config PATH`

    def __init__(
        self,
        state_dir: Path,
        dns_port: int,
        *,
        python: str = sys.executable,
        cwd: Path | None = None,
        **settings: object,
    ) -> None:
        """`python` runs `-m control_plane serve` in `cwd` (another venv's, say, in a directory of no checkout)."""
        self.state_dir = state_dir
        self.python, self.cwd = python, cwd
        self.grpc_port, self.admin_port = free_port(), free_port()
        # Envoy's admin and the xDS server are unix sockets (0600) in the state dir, unless `settings` says otherwise.
        self.envoy_dir = state_dir / "envoy"
        self.xds_socket, self.envoy_admin_socket = self.envoy_dir / "xds.sock", self.envoy_dir / "admin.sock"
        self.admin_token = "test-admin-token"
        self.node_id = f"test-{os.getpid()}-{self.grpc_port}"
        self.api_token = "test-api-token"
        self.config = state_dir.parent / f"{state_dir.name}.toml"
        lines = {
            "state_dir": str(state_dir), "grpc_addr": f"127.0.0.1:{self.grpc_port}",
            "admin_addr": f"127.0.0.1:{self.admin_port}", "node_id": self.node_id, "api_token": self.api_token,
            "admin_token": self.admin_token, "dns_resolvers": [f"127.0.0.1:{dns_port}"],
            # The test upstreams live on loopback, which the default policy forbids: this exception is
            # the tests' own, and test_destinations shows that without it they are denied.
            "forbidden_exceptions": ["127.0.0.1/32"], "warm_pool_size": 0, **settings,
        }  # fmt: skip
        self.config.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in lines.items()))
        self.proc: subprocess.Popen[bytes] | None = None
        self.manages_envoy = bool(settings.get("manage_envoy", True))
        self.log_path = state_dir.parent / f"{state_dir.name}.log"

    def start(self, timeout: float = 30) -> SandgateProcess:
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGATE_")}
        self.proc = subprocess.Popen(
            [self.python, "-m", *self.SERVE, "--config", str(self.config)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
        )  # fmt: skip
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, f"sandgate exited; see {self.log_path}:\n{self.log()}"
            if self._grpc_serving() and (not self.manages_envoy or self._envoy_live()):
                return
            time.sleep(0.1)
        raise TimeoutError(f"sandgate did not become ready; see {self.log_path}:\n{self.log()}")

    def _grpc_serving(self) -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as ch:
            try:
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.RpcError:
                return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

    def envoy_admin(self, path: str) -> str:
        return envoy_admin_get(self.envoy_admin_socket, path)

    def _envoy_live(self) -> bool:
        try:
            return self.envoy_admin("/ready").strip() == "LIVE"
        except OSError:
            return False

    def admin(
        self,
        method: str,
        path: str,
        body: object = None,
        token: str | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict[str, Any]]:
        """One admin API call; returns the status and the decoded JSON body (empty for none)."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.admin_token if token is None else token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, payload = err.code, err.read()
        return status, (json.loads(payload) if payload.strip().startswith(b"{") else {})

    def client(self) -> SessionsClient:
        return SessionsClient(f"127.0.0.1:{self.grpc_port}", self.api_token)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class SandgateClient(SessionsClient):
    """A sessions client that ends the sessions it created."""

    def __init__(self, proc: SandgateProcess) -> None:
        super().__init__(f"127.0.0.1:{proc.grpc_port}", proc.api_token)
        self.proc = proc
        self.created: list[str] = []

    def create(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        session = super().create(*args, **kwargs)
        self.created.append(session.id)
        return session

    def sh(self, session_id: str, script: str, stdin: bytes = b"") -> tuple[int, str, str]:
        result = self.exec(session_id, ["sh", "-c", script], stdin=stdin, timeout_seconds=60)
        return result.exit_code, result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")

    def cleanup(self) -> None:
        for sid in self.created:
            self.delete(sid)
        self.close()


class NoSandboxProcess(SandgateProcess):
    """The control plane as a subprocess over the in-memory runtime: real servers and Envoy, no dockerd."""

    SERVE = ("tests.support.serve_without_sandboxes",)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
