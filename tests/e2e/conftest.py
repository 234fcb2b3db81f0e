"""End-to-end fixtures: real dockerd + runsc, the real control plane and Envoy, test upstreams and DNS."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.support.dns import DnsServer
from tests.support.netns import OUTSIDE_ADDR, OutsideHost
from tests.support.service import SandgateClient, SandgateProcess
from tests.support.upstream import Upstream, make_test_ca

pytestmark = pytest.mark.e2e
TEST_NAMES = ["allowed.test", "other.test", "secure.test", "api.wild.test", "wild.test"]
# The README's walkthrough names real domains; the tests' own DNS server points them at loopback.
WALKTHROUGH_NAMES = ["example.com", "pypi.org"]
# Names that resolve into forbidden ranges, at addresses that are still this machine's own test hosts.
FORBIDDEN_NAMES = {"loop2.test": "127.0.0.2", "private.test": OUTSIDE_ADDR, "rebind.test": "127.0.0.1"}


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"e2e tests need dockerd with the runsc runtime; run `make setup` ({exc})")
    return client


@pytest.fixture(scope="session")
def dns() -> Iterator[DnsServer]:
    records = {**dict.fromkeys(TEST_NAMES + WALKTHROUGH_NAMES, "127.0.0.1"), **FORBIDDEN_NAMES}
    with DnsServer(records) as server:
        yield server


@pytest.fixture(scope="session")
def http_upstream() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    return make_test_ca(tmp_path_factory.mktemp("ca"), ["secure.test"])


@pytest.fixture(scope="session")
def tls_upstream(test_ca: tuple[Path, object]) -> Iterator[Upstream]:
    with Upstream(tls=test_ca[1]) as up:  # type: ignore[arg-type]
        yield up


@pytest.fixture(scope="session")
def outside_host() -> Iterator[str]:
    with OutsideHost() as host:
        yield host.address


@pytest.fixture(scope="session")
def sandgate(
    tmp_path_factory: pytest.TempPathFactory, dns: DnsServer, docker_client: docker.DockerClient
) -> Iterator[SandgateProcess]:
    state = tmp_path_factory.mktemp("sandgate") / "state"
    proc = SandgateProcess(state, dns.port).start()
    yield proc
    proc.stop()
    leftover = docker_client.containers.list(all=True, filters={"label": f"sandgate.node={proc.node_id}"})
    for container in leftover:
        container.remove(force=True)
    assert not leftover, f"containers left behind: {[c.name for c in leftover]}"


OwnSandgate = Callable[..., SandgateProcess]


@pytest.fixture()
def short_tmp() -> Iterator[Path]:
    """A directory with a short path: a session's socket path must fit in 107 bytes, and pytest's
    tmp_path (with the test's name, and a run number past 100) does not leave room. Its state
    directories go with the test; its logs stay, next to them."""
    path = Path(tempfile.mkdtemp(prefix="sg-"))
    yield path
    for state in path.glob("state*/"):
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture()
def own_sandgate_with(short_tmp: Path, dns: DnsServer) -> Iterator[OwnSandgate]:
    """Starts a private control plane with extra settings; ends its sessions and stops it afterwards."""
    started: list[SandgateProcess] = []

    def start(**settings: object) -> SandgateProcess:
        proc = SandgateProcess(short_tmp / f"state{len(started)}", dns.port, **settings)
        started.append(proc)  # before start(): a failed start is still stopped
        return proc.start()

    yield start
    for proc in started:
        if proc.proc and proc.proc.poll() is None:
            with proc.client() as c:
                for s in c.list().sessions:
                    c.delete(s.id)
        proc.stop()


@pytest.fixture()
def own_sandgate(own_sandgate_with: OwnSandgate) -> SandgateProcess:
    return own_sandgate_with()


@pytest.fixture()
def client(sandgate: SandgateProcess) -> Iterator[SandgateClient]:
    c = SandgateClient(sandgate)
    yield c
    c.cleanup()


def runsc_processes_for(container_id: str) -> list[str]:
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "runsc" in line and container_id in line]
