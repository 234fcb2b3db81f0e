"""Short-lived sandboxes: TTL, idle timeout and capacity."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import docker
import grpc
import pytest

from tests.e2e.conftest import OwnSandgate, SandgateClient
from tests.support.metrics import sample, scrape
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream


def gone(client: SandgateClient, session_id: str, timeout: float) -> float:
    start = time.monotonic()
    while any(s.id == session_id for s in client.list().sessions):
        assert time.monotonic() - start < timeout, f"{session_id} is still there"
        time.sleep(0.2)
    return time.monotonic() - start


def deleted(client: SandgateClient, reason: str) -> float:
    return sample(scrape(client.proc.admin_port), "sandgate_sessions_deleted_total", reason=reason) or 0.0


def counted_past(client: SandgateClient, reason: str, before: float, timeout: float = 10) -> None:
    """The session's end is counted once its teardown returns, just after what the test watched."""
    deadline = time.monotonic() + timeout
    while deleted(client, reason) <= before:
        assert time.monotonic() < deadline, f"no session end counted as {reason}"
        time.sleep(0.1)


def test_ttl_destroys_the_container_and_the_token(
    client: SandgateClient, docker_client: docker.DockerClient, http_upstream: Upstream
) -> None:
    expired = deleted(client, "expired")
    s = client.create(ttl_seconds=3, egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    assert s.expires_at.ToSeconds() - s.created_at.ToSeconds() == 3
    gone(client, s.id, 10)
    deadline = time.monotonic() + 10  # the session is withdrawn first, then its sandbox is removed
    while docker_client.containers.list(all=True, filters={"label": f"sandgate.session={s.id}"}):
        assert time.monotonic() < deadline, "the expired session's container is still there"
        time.sleep(0.2)
    while (client.proc.state_dir / "sessions" / s.id).exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(grpc.RpcError) as err:
        client.exec(s.id, ["true"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    counted_past(client, "expired", expired)


def test_idle_timeout_counts_egress_and_exec_as_activity(client: SandgateClient, http_upstream: Upstream) -> None:
    idle = deleted(client, "idle")
    s = client.create(idle_timeout_seconds=3, egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    for _ in range(5):  # 5 s of activity, each gap shorter than the idle timeout
        client.sh(s.id, f"curl -s -o /dev/null http://allowed.test:{http_upstream.port}/")
        time.sleep(1)
    assert client.get(s.id).state == 2
    assert gone(client, s.id, 10) >= 2
    counted_past(client, "idle", idle)


HOLD_TUNNEL = """
import base64, socket, sys, time
token = open("/run/sandgate/token").read().strip()
creds = base64.b64encode(("sandgate:" + token).encode()).decode()
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(("CONNECT %s HTTP/1.1\\r\\nHost: %s\\r\\nProxy-Authorization: Basic %s\\r\\n\\r\\n"
           % (sys.argv[1], sys.argv[1], creds)).encode())
assert b" 200 " in s.recv(1000)
time.sleep(float(sys.argv[2]))  # the tunnel stays open, with no traffic at all
s.close()
"""


def test_a_running_exec_or_an_open_tunnel_is_not_idle(client: SandgateClient, http_upstream: Upstream) -> None:
    s = client.create(idle_timeout_seconds=3, egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    assert client.exec(s.id, ["sleep", "5"]).exit_code == 0  # longer than the idle timeout
    assert client.get(s.id).state == 2
    client.sh(s.id, "cat > /tmp/hold.py", stdin=HOLD_TUNNEL.encode())
    started = time.monotonic()
    code, _, err = client.sh(
        s.id, f"setsid python3 /tmp/hold.py allowed.test:{http_upstream.port} 7 >/tmp/hold.log 2>&1 &"
    )
    assert code == 0, err
    # From here no Exec runs and no request is made: only the open tunnel keeps the session from being idle.
    # Without it the session would end about 3 s after that Exec; it must outlive the 7 s tunnel instead.
    gone(client, s.id, 15)
    assert time.monotonic() - started > 7  # idle only after the tunnel closed


def test_idle_timeout_longer_than_ttl_is_invalid(client: SandgateClient) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.create(ttl_seconds=10, idle_timeout_seconds=11)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "idle_timeout_seconds" in err.value.details()


@pytest.fixture()
def small(own_sandgate_with: OwnSandgate) -> SandgateProcess:
    return own_sandgate_with(max_sessions=2)


def test_capacity_is_a_clear_error_not_a_hang(small: SandgateProcess) -> None:
    def create() -> str:
        with small.client() as c:
            try:
                return c.create().id and "ok"
            except grpc.RpcError as err:
                return f"{err.code().name}: {err.details()}"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: create(), range(4)))
    assert sorted(results)[:2] == ["RESOURCE_EXHAUSTED: this Sandgate runs at most 2 sessions; end one first"] * 2
    assert results.count("ok") == 2
