"""Churn: 200 create/exec/delete cycles, four at a time, leave nothing behind."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import docker

from control_plane.store import Store
from tests.e2e.conftest import SandgateClient
from tests.support.service import SandgateProcess

CYCLES = 200
PARALLEL = 4


def cycle(proc: SandgateProcess, i: int) -> str:
    with proc.client() as c:
        s = c.create(egress=[{"host": "allowed.test"}], labels={"suite": "churn"})
        try:
            result = c.exec(s.id, ["sh", "-c", f"echo {i}"])
            assert result.exit_code == 0 and result.stdout == f"{i}\n".encode(), result
        finally:  # a failed cycle is reported as itself, not as a container left behind
            c.delete(s.id)
    return s.id


def test_churn_leaves_nothing_behind(
    client: SandgateClient, sandgate: SandgateProcess, docker_client: docker.DockerClient
) -> None:
    before_dirs = {p.name for p in (sandgate.state_dir / "sessions").iterdir()}
    with ThreadPoolExecutor(PARALLEL) as pool:
        ids = list(pool.map(lambda i: cycle(sandgate, i), range(CYCLES)))
    assert len(set(ids)) == CYCLES
    assert not client.list(labels={"suite": "churn"}).sessions
    leftover = docker_client.containers.list(all=True, filters={"label": f"sandgate.node={sandgate.node_id}"})
    assert not {c.labels["sandgate.session"] for c in leftover} & set(ids)
    assert {p.name for p in (sandgate.state_dir / "sessions").iterdir()} == before_dirs
    store = Store(sandgate.state_dir / "sandgate.db")
    assert not {s.id for s in store.sessions()} & set(ids)
    store.close()
    runsc = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in runsc.splitlines() if "runsc" in line and any(i in line for i in ids)]
    deadline = time.monotonic() + 10
    while any(f"session-{i}" in sandgate.envoy_admin("/config_dump?resource=dynamic_listeners") for i in ids):
        assert time.monotonic() < deadline, "listeners of ended sessions are still in Envoy"
        time.sleep(0.2)
