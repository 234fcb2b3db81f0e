"""One session cannot hurt its neighbours with oversized input: each attack of the tenant-isolation issue
is refused before anything is created, naming the field, and the service keeps serving everyone else."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from typing import Any

import docker
import grpc
import pytest

from control_plane.client import SessionsClient
from tests.e2e.conftest import SandgateClient
from tests.support.service import SandgateProcess

INTERNAL_WORDS = ("docker", "OCI", "runsc", "Server Error", "/var/", "500")
LONG_HOST = ".".join(["a" * 63] * 3) + ".limits.test"  # 204 characters


def footprint(proc: SandgateProcess, docker_client: docker.DockerClient) -> tuple[int, set[str], int]:
    dirs = {p.name for p in (proc.state_dir / "sessions").iterdir()}
    containers = docker_client.containers.list(all=True, filters={"label": f"sandgate.node={proc.node_id}"})
    with proc.client() as c:
        return len(list_all(c)), dirs, len(containers)


def list_all(c: SessionsClient, page_size: int = 500) -> list[str]:
    """Every session id, page by page, as `sandgate session ls` reads them."""
    ids: list[str] = []
    token = ""
    while True:
        page = c.list(page_size=page_size, page_token=token)
        ids += [s.id for s in page.sessions]
        if not (token := page.next_page_token):
            return ids


def refused(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def cli_ls(proc: SandgateProcess) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDGATE_")}
    env |= {"SANDGATE_GRPC_ADDR": f"127.0.0.1:{proc.grpc_port}", "SANDGATE_API_TOKEN": proc.api_token}
    return subprocess.run([sys.executable, "-m", "control_plane", "session", "ls", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_25000_labels_are_refused_and_listing_works_for_others(
    client: SandgateClient, docker_client: docker.DockerClient
) -> None:
    neighbour = client.create(labels={"owner": "neighbour"})
    before = footprint(client.proc, docker_client)
    err = refused(lambda: client.create(labels={f"k{i:05}": "v" * 190 for i in range(25_000)}))  # 5 MB
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("labels: ") and "25000" in err.details()
    assert footprint(client.proc, docker_client) == before
    at_limit = client.create(labels={f"key-{i:02}": "v" * 250 for i in range(64)})  # 16,384 bytes: allowed
    with client.proc.client() as other:
        ids = list_all(other)
    assert neighbour.id in ids and at_limit.id in ids
    listed = cli_ls(client.proc)
    assert listed.returncode == 0, listed.stderr
    assert {neighbour.id, at_limit.id} <= {s["id"] for s in json.loads(listed.stdout)}


def test_a_page_of_sessions_at_the_limits_fits(client: SandgateClient) -> None:
    """Sessions as large as the limits allow (256 long rules, 8,192 route domains, 16 KiB of labels)."""
    rules = [{"host": f"h{j:03}.{LONG_HOST}", "ports": list(range(60_000, 60_031))} for j in range(256)]
    labels = {f"{k:02}" + "k" * 61: "v" * 193 for k in range(64)}
    big = [client.create(egress=rules, labels=labels) for _ in range(2)]
    assert all(len(s.egress) == 256 for s in big)
    with client.proc.client() as other:  # a plain client: it accepts messages of up to 4 MiB
        page = other.list(page_size=500)
        assert {s.id for s in big} <= set(list_all(other))
    assert page.ByteSize() < 4 << 20


def test_a_24_with_12000_ports_is_refused_naming_the_field(
    client: SandgateClient, docker_client: docker.DockerClient
) -> None:
    proc = client.proc
    before = footprint(proc, docker_client)
    err = refused(lambda: client.create(egress=[{"host": "203.0.113.0/24", "ports": list(range(1000, 13000))}]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith("egress[0].ports: ") and "max_ports_per_rule" in err.details()
    assert footprint(proc, docker_client) == before

    s = client.create(egress=[{"host": "allowed.test"}])
    path = f"/v1/sessions/{s.id}/egress"
    wide = {"host": "203.0.113.0/24", "ports": list(range(1, 10_001))}  # fits the 64 KiB body limit
    many = {"host": "203.0.113.0/24", "ports": list(range(1000, 1064))}  # within each rule's limits: 16,384 domains
    for method, body, field in [
        ("PUT", {"egress": [wide]}, "egress[0].ports"),
        ("POST", wide, "ports"),
        ("PUT", {"egress": [many]}, "egress"),
        ("POST", many, "egress"),
        ("PUT", {"egress": [{"host": f"h{i}.test"} for i in range(257)]}, "egress"),
    ]:
        status, answer = proc.admin(method, path, body)
        assert (status, answer["error"]["field"]) == (400, field), answer
    assert "max_route_domains" in proc.admin("PUT", path, {"egress": [many]})[1]["error"]["message"]
    assert proc.admin("GET", path)[1]["egress"] == [
        {"host": "allowed.test", "ports": [80, 443], "methods": [], "paths": [], "inspect": False, "credential": ""}
    ]

    status, answer = proc.admin("PUT", "/v1/policy", {"default_egress": [many]})
    assert (status, answer["error"]["field"]) == (400, "default_egress")
    status, answer = proc.admin("PUT", "/v1/policy", {"deny": [f"d{i}.test" for i in range(257)]})
    assert (status, answer["error"]["field"]) == (400, "deny")
    assert proc.admin("GET", "/v1/policy")[1] == {"default_egress": [], "deny": []}


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "198.18.20226", "2130706433", "*.co.uk", "*.github.io"])
def test_numeric_and_broad_names_are_refused(client: SandgateClient, host: str) -> None:
    err = refused(lambda: client.create(egress=[{"host": host}]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("egress[0].host: ")
    s = client.create(egress=[{"host": "allowed.test"}])
    status, answer = client.proc.admin("PUT", f"/v1/sessions/{s.id}/egress", {"egress": [{"host": host}]})
    assert (status, answer["error"]["field"]) == (400, "egress[0].host")


def test_a_huge_env_is_refused_cleanly(client: SandgateClient, docker_client: docker.DockerClient) -> None:
    before = footprint(client.proc, docker_client)
    # 16 MiB: dockerd fails it with its own words (containerd's message limit); one variable of 200 KiB
    for env in ({f"VAR{i}": "x" * 65_536 for i in range(256)}, {"ONE": "x" * (200 << 10)}):
        err = refused(functools.partial(client.create, env=env))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("env: ")
        assert not [w for w in INTERNAL_WORDS if w in err.details()], err.details()
    assert footprint(client.proc, docker_client) == before
    s = client.create()
    err = refused(lambda: client.exec(s.id, ["true"], env={f"VAR{i}": "x" * 65_536 for i in range(64)}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("env: ")
    assert client.exec(s.id, ["true"]).exit_code == 0


def test_8_gib_sessions_capped(own_sandgate: SandgateProcess, docker_client: docker.DockerClient) -> None:
    """With the default settings: 4 x this host's memory in all, 8 GiB at most per session (docs/CONFIG.md)."""
    total = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20) * 4.0)
    with own_sandgate.client() as c:
        err = refused(lambda: c.create(limits={"memory_mb": 16384}))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and err.details().startswith("limits.memory_mb: ")
        admitted: list[str] = []
        for _ in range(total // 8192 + 1):  # one more than fits
            try:
                admitted.append(c.create(limits={"memory_mb": 8192}).id)
            except grpc.RpcError as exc:
                err = exc
                break
        assert len(admitted) == total // 8192, err.details()
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.details().startswith("limits.memory_mb: memory is exhausted") and "total_memory_mb" in err.details()
        assert footprint(own_sandgate, docker_client)[0::2] == (len(admitted), len(admitted))  # none half-made
        c.delete(admitted.pop())  # ending one makes room for one
        admitted.append(c.create(limits={"memory_mb": 8192}).id)
