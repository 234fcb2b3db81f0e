"""Envoy's admin API and the control plane's xDS/ext_authz/ALS server are out of reach of a sandbox and of every
host user but root, even if a destination check were wrong: both are unix sockets (0600) in a 0700 directory."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.e2e.test_destinations import fetch, tunnel
from tests.support.dns import DnsServer
from tests.support.service import SandgateProcess

UNIX_CONNECT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_UNIX)\n"
    "try:\n    s.connect(sys.argv[1]); print('CONNECTED')\n"
    "except OSError as e: print(e.errno)\n"
)


def test_the_sandbox_cannot_reach_envoys_admin_nor_the_control_plane(
    client: SandgateClient, sandgate: SandgateProcess
) -> None:
    s = client.create()
    for path in (sandgate.envoy_admin_socket, sandgate.xds_socket):
        assert path.is_socket()  # they are there on the host...
        _, out, _ = client.sh(s.id, f'python3 -c "{UNIX_CONNECT}" {path}')
        assert out.strip() == str(errno.ENOENT), (path, out)  # ...and not in the sandbox: nothing to connect to
    _, out, _ = client.sh(s.id, f"ls {sandgate.envoy_dir} {sandgate.state_dir} 2>&1; ls /run/sandgate")
    assert "admin.sock" not in out and "xds.sock" not in out and "bootstrap.yaml" not in out


def test_through_its_own_proxy_a_sandbox_reaches_no_host_loopback_service(own_sandgate_with: OwnSandgate) -> None:
    proc = own_sandgate_with(forbidden_exceptions=[])  # the default policy, not the tests' loopback exception
    client = SandgateClient(proc)
    try:
        ports = [proc.grpc_port, proc.admin_port]
        s = client.create(egress=[{"host": "127.0.0.1", "ports": ports}])  # even an explicit rule for them
        for port in ports:
            assert fetch(client, s.id, f"http://127.0.0.1:{port}/") == ("403", "destination-ip-forbidden")
            assert tunnel(client, s.id, "127.0.0.1", port) == "403"
    finally:
        client.cleanup()


@pytest.fixture()
def probe_user() -> Iterator[str]:
    """A throwaway unprivileged system user, removed afterwards (if this test created it)."""
    name = f"sandgate-probe-{os.getpid()}"
    created = subprocess.run(["id", name], capture_output=True, check=False).returncode != 0
    if created:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    yield name
    if created:
        subprocess.run(["userdel", name], check=True)


@pytest.fixture()
def traversable_sandgate(dns: DnsServer) -> Iterator[SandgateProcess]:
    """A control plane and its Envoy whose state dir's parent any user may traverse (as /var/lib is), so that
    only Sandgate's own directory and socket modes stand in a host user's way."""
    base = Path(tempfile.mkdtemp(prefix="sg-probe-", dir="/tmp"))
    base.chmod(0o711)
    proc = SandgateProcess(base / "state", dns.port)
    try:
        yield proc.start()
    finally:
        proc.stop()
        shutil.rmtree(base)


def connect_as(user: str | None, path: Path) -> str:
    """'CONNECTED' or the errno of a unix-socket connect to `path`, as `user` (None: root)."""
    argv = ["/usr/bin/python3", "-c", UNIX_CONNECT, str(path)]
    argv = ["runuser", "-u", user, "--", *argv] if user else argv
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_a_host_user_other_than_root_cannot_open_envoys_admin_nor_the_control_plane(
    traversable_sandgate: SandgateProcess, probe_user: str
) -> None:
    proc = traversable_sandgate
    sockets = (proc.envoy_admin_socket, proc.xds_socket)
    assert proc.state_dir.stat().st_mode & 0o777 == 0o700 and proc.envoy_dir.stat().st_mode & 0o777 == 0o700
    for path in sockets:
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert connect_as(None, path) == "CONNECTED"  # root can: the socket is live
        assert connect_as(probe_user, path) == str(errno.EACCES), path  # the state directory stops the user
    proc.state_dir.chmod(0o711)  # without the state directory's barrier, the envoy directory's holds
    try:
        for path in sockets:
            assert connect_as(probe_user, path) == str(errno.EACCES), path
        proc.envoy_dir.chmod(0o711)  # and without that one too, the socket's own mode still holds
        for path in sockets:
            assert connect_as(probe_user, path) == str(errno.EACCES), path
    finally:
        proc.envoy_dir.chmod(0o700)
        proc.state_dir.chmod(0o700)


def test_the_control_plane_is_not_on_any_tcp_port_of_its_own(sandgate: SandgateProcess) -> None:
    """Only the two APIs listen on TCP: nothing of Envoy's admin or of the control channel does."""
    assert sandgate.proc is not None
    envoy_pid = int((sandgate.state_dir / "envoy.pid").read_text())
    listening = _tcp_listening_ports(sandgate.proc.pid) | _tcp_listening_ports(envoy_pid)
    assert listening == {sandgate.grpc_port, sandgate.admin_port}


def _tcp_listening_ports(pid: int) -> set[int]:
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    return {int(line.split()[3].rpartition(":")[2]) for line in out.splitlines() if f"pid={pid}," in line}
