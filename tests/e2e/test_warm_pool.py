"""The warm pool: CreateSession claims a started sandbox; the pool refills; shutdown keeps sessions."""

from __future__ import annotations

import time

import docker
import pytest

from tests.e2e.conftest import OwnSandgate
from tests.support.metrics import sample, scrape
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream


@pytest.fixture()
def pooled(own_sandgate_with: OwnSandgate) -> SandgateProcess:
    return own_sandgate_with(warm_pool_size=2)


def pool_ids(proc: SandgateProcess, docker_client: docker.DockerClient, sessions: set[str]) -> set[str]:
    found = docker_client.containers.list(all=True, filters={"label": f"sandgate.node={proc.node_id}"})
    return {c.labels["sandgate.session"] for c in found} - sessions


def wait_pool(proc: SandgateProcess, docker_client: docker.DockerClient, sessions: set[str]) -> set[str]:
    """The pool's sandboxes, once both are started and claimable (as /metrics reports)."""
    deadline = time.monotonic() + 30
    while not ready_in_pool(proc, 2):
        assert time.monotonic() < deadline, "the pool did not fill"
        time.sleep(0.1)
    ids = pool_ids(proc, docker_client, sessions)
    assert len(ids) == 2, ids
    return ids


def ready_in_pool(proc: SandgateProcess, count: int) -> bool:
    return sample(scrape(proc.admin_port), "sandgate_warm_pool_ready") == count


def test_create_claims_a_warm_sandbox_and_the_pool_refills(
    pooled: SandgateProcess, docker_client: docker.DockerClient, http_upstream: Upstream
) -> None:
    warm = wait_pool(pooled, docker_client, set())
    with pooled.client() as c:
        s = c.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
        assert s.id in warm and s.state == 2
        out = c.exec(s.id, ["sh", "-c", f"cat /run/sandgate/token; echo; curl -s -o /dev/null -w '%{{http_code}}' "
                                        f"http://allowed.test:{http_upstream.port}/"]).stdout.decode()  # fmt: skip
        assert out.split() == [s.token, "200"]
        cold = c.create(limits={"memory_mb": 256})  # not the pool's limits: started cold
        assert cold.id not in warm
        assert len(wait_pool(pooled, docker_client, {s.id, cold.id})) == 2
    text = scrape(pooled.admin_port)  # this stack's own: one create of each kind, timed by how it started
    for start in ("warm", "cold"):
        assert sample(text, "sandgate_session_create_seconds_count", start=start) == 1
        assert sample(text, "sandgate_sessions_created_total", start=start) == 1


def test_sigterm_keeps_sessions_for_the_next_start(
    pooled: SandgateProcess, docker_client: docker.DockerClient, http_upstream: Upstream
) -> None:
    wait_pool(pooled, docker_client, set())
    with pooled.client() as c:
        s = c.create(egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    pooled.stop()  # SIGTERM: graceful
    left = docker_client.containers.list(all=True, filters={"label": f"sandgate.node={pooled.node_id}"})
    assert [c.labels["sandgate.session"] for c in left] == [s.id]  # the pool is gone, the session is kept
    pooled.start()
    with pooled.client() as c:
        assert c.get(s.id).state == 2
        got = c.exec(
            s.id, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://allowed.test:{http_upstream.port}/"]
        )
        assert got.stdout == b"200"
