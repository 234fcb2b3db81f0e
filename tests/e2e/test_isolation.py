"""Every path out of a sandbox other than its own Envoy listener fails, tried from inside."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import docker

from tests.e2e.conftest import SandgateClient, runsc_processes_for
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

PY_CONNECT = (
    'python3 -c "import socket,sys\n'
    "try:\n socket.create_connection(('{host}', {port}), timeout=3); print('CONNECTED')\n"
    "except OSError as e: print('BLOCKED', e.errno)\""
)
PY_UDP = (
    'python3 -c "import socket\n'
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "try:\n s.sendto(b'x', ('{host}', {port})); print('SENT')\n"
    "except OSError as e: print('BLOCKED', e.errno)\""
)


def test_outside_host_is_reachable_from_the_host_but_not_from_the_sandbox(
    client: SandgateClient, outside_host: str
) -> None:
    with socket.create_connection((outside_host, 8080), timeout=3) as conn:  # the test host is really there
        assert conn.recv(100).startswith(b"outside-host-reached")
    s = client.create()
    _, out, _ = client.sh(s.id, PY_CONNECT.format(host=outside_host, port=8080))
    assert out.startswith("BLOCKED"), out
    _, out, _ = client.sh(s.id, f"curl -sS --noproxy '*' --max-time 5 http://{outside_host}:8080/; echo rc=$?")
    assert "outside-host-reached" not in out and "rc=0" not in out


def test_udp_and_dns_do_not_leave(client: SandgateClient, outside_host: str) -> None:
    s = client.create()
    _, out, _ = client.sh(s.id, PY_UDP.format(host=outside_host, port=53))
    assert out.startswith("BLOCKED"), out
    _, resolv, _ = client.sh(s.id, "cat /etc/resolv.conf")
    assert "nameserver 127.0.0.1" in resolv  # the host's resolver is not even named inside


def test_host_loopback_services_are_not_reachable(
    client: SandgateClient, sandgate: SandgateProcess, http_upstream: Upstream
) -> None:
    s = client.create()
    for port in (http_upstream.port, sandgate.grpc_port, sandgate.admin_port):
        _, out, _ = client.sh(s.id, PY_CONNECT.format(host="127.0.0.1", port=port))
        assert out.startswith("BLOCKED"), (port, out)


def test_another_sandbox_is_not_reachable(client: SandgateClient, sandgate: SandgateProcess) -> None:
    a, b = client.create(), client.create()
    _, listing, _ = client.sh(a.id, "ls /run/sandgate/; ls /run/sandgate/.. ")
    assert b.id not in listing and b.token not in listing
    other_socket = str(sandgate.state_dir / "sessions" / b.id / "proxy.sock")
    _, out, _ = client.sh(
        a.id,
        f"python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{other_socket}')\" 2>&1; echo rc=$?",
    )
    assert "rc=0" not in out
    _, env, _ = client.sh(a.id, "env")
    assert b.token not in env


def test_sandbox_is_hardened(client: SandgateClient, docker_client: docker.DockerClient) -> None:
    s = client.create(limits={"memory_mb": 256, "cpus": 0.5, "pids": 600})
    _, out, _ = client.sh(
        s.id, "id -u; touch /var/tmp/x 2>&1; echo; touch /tmp/ok && echo scratch-ok; grep CapEff /proc/self/status"
    )
    lines = out.splitlines()
    assert lines[0] == "65534"
    assert "Read-only file system" in out and "scratch-ok" in out
    assert "CapEff:\t0000000000000000" in out
    attrs = docker_client.containers.get(f"sandgate-{s.id}").attrs
    host = attrs["HostConfig"]
    assert host["Runtime"].startswith("runsc") and host["NetworkMode"] == "none" and host["ReadonlyRootfs"]
    # On no docker network, whatever the host's dockerd has (setup leaves its bridge as it is): no address.
    networks = attrs["NetworkSettings"]["Networks"]
    assert list(networks) == ["none"] and not networks["none"]["IPAddress"] and not attrs["NetworkSettings"]["Ports"]
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (256 << 20, 500_000_000, 600)
    assert host["MemorySwap"] == host["Memory"]  # no swap beyond the memory limit
    assert "size=256m" in host["Tmpfs"]["/tmp"] and "nosuid" in host["Tmpfs"]["/tmp"]
    assert [m["Source"] for m in attrs["Mounts"]] == [str(Path(attrs["Mounts"][0]["Source"]))]
    assert attrs["Mounts"][0]["RW"] is False


def test_delete_removes_everything(
    client: SandgateClient, sandgate: SandgateProcess, docker_client: docker.DockerClient
) -> None:
    s = client.create(egress=[{"host": "allowed.test", "ports": [80]}])
    container = docker_client.containers.get(f"sandgate-{s.id}")
    assert runsc_processes_for(container.id)
    client.delete(s.id)
    client.delete(s.id)  # idempotent
    assert not docker_client.containers.list(all=True, filters={"label": f"sandgate.session={s.id}"})
    assert not (sandgate.state_dir / "sessions" / s.id).exists()
    assert f"session-{s.id}" not in sandgate.envoy_admin("/listeners")
    deadline = time.monotonic() + 10  # the removed listener drains for 2 s, then is gone
    while f"session-{s.id}" in sandgate.envoy_admin("/config_dump?resource=dynamic_listeners"):
        assert time.monotonic() < deadline, "listener still in Envoy"
        time.sleep(0.2)
    assert not runsc_processes_for(container.id)
