"""Sandboxes are never on a docker network: what the runtime asks dockerd for, without dockerd.

setup.sh leaves the host's docker networking as it is (tests/unit/test_docker_daemon.py), so the default
bridge may well exist; this is why that is safe. tests/e2e/test_isolation.py checks the real container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from control_plane.domain.session import Limits
from control_plane.sessions.docker_runtime import DockerRuntime, RuntimeWorkers
from control_plane.sessions.runtime import ContainerSpec
from control_plane.workers import FairWorkers, Workers


class Recording:
    """A docker client that records what `containers.run` was asked for."""

    def __init__(self) -> None:
        self.containers = self
        self.calls: list[dict[str, Any]] = []
        self.id = "c0ffee"

    def run(self, image: str, **kwargs: Any) -> Recording:
        self.calls.append({"image": image, **kwargs})
        return self


def test_a_sandbox_is_started_with_no_docker_network() -> None:
    workers = RuntimeWorkers(Workers("control", 1), FairWorkers(Workers("session", 2), 1), 5.0, 4)
    runtime = DockerRuntime("runsc-sandgate", workers)
    client = Recording()
    runtime._client = client
    spec = ContainerSpec("s-0123456789abcdef", "node", "img:1", Limits(512, 1.0, 512), Path("/nonexistent"), 3128)
    try:
        assert runtime._run(spec) == "c0ffee"
    finally:
        workers.control.shutdown()
        workers.sessions.workers.shutdown()
    [call] = client.calls
    assert call["network_mode"] == "none" and "network" not in call and "ports" not in call
    assert call["runtime"] == "runsc-sandgate" and call["dns"] == ["127.0.0.1"]
