"""What one session does never costs another: shared threads, file calls and the audit log are fair.

The attacker is a real sandbox: it runs long Execs, asks for FIFOs it made, floods denied requests.
Each test fails on the code before the fix (a shared 6-thread pool, a blocking ReadFile, a global
"newest 100,000" retention) and passes now. Waits are generous deadlines, never timing ratios.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest

from control_plane.client import SessionsClient
from tests.e2e.conftest import OwnSandgate
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

LONG_EXECS = 8
FIFO_READS = 8


@pytest.fixture()
def stack(own_sandgate_with: OwnSandgate) -> SandgateProcess:
    return own_sandgate_with(session_workers=8, session_workers_per_session=2)


@pytest.fixture()
def patient(stack: SandgateProcess) -> Iterator[SessionsClient]:
    """A client whose calls may run for minutes (the attacker's long Execs)."""
    client = SessionsClient(f"127.0.0.1:{stack.grpc_port}", stack.api_token, timeout=600)
    yield client
    client.close()


def start_long_execs(patient: SessionsClient, session_id: str) -> list[grpc.Future]:
    script = "echo started; exec sleep 600"
    return [patient.exec_stream(session_id, ["sh", "-c", script]) for _ in range(LONG_EXECS)]


def read_fifos(pool: ThreadPoolExecutor, client: SessionsClient, session_id: str) -> list[Future[bytes]]:
    return [pool.submit(client.read_file, session_id, f"/tmp/fifo{i}") for i in range(FIFO_READS)]


def test_one_sessions_backlog_does_not_stall_another(stack: SandgateProcess, patient: SessionsClient) -> None:
    with stack.client() as client, ThreadPoolExecutor(LONG_EXECS + FIFO_READS) as pool:
        attacker, victim = client.create().id, client.create().id
        fifos = " ".join(f"/tmp/fifo{i}" for i in range(FIFO_READS))
        assert client.exec(attacker, ["sh", "-c", f"mkfifo {fifos}"]).exit_code == 0
        long_execs = start_long_execs(patient, attacker)
        started = [pool.submit(next, call) for call in long_execs]  # all running, each holding its stream
        assert [first.result(timeout=60).stdout for first in started] == [b"started\n"] * LONG_EXECS
        reads = read_fifos(pool, client, attacker)
        # The victim's Exec, files, a cold CreateSession and the decisions query all complete.
        result = client.exec(victim, ["sh", "-c", "echo ok; id -u"])
        assert (result.exit_code, result.stdout) == (0, b"ok\n65534\n")
        assert client.write_file(victim, "/tmp/v.txt", b"victim data") == 11
        assert client.read_file(victim, "/tmp/v.txt") == b"victim data"
        third = client.create()
        assert client.exec(third.id, ["true"]).exit_code == 0
        status, body = stack.admin("GET", f"/v1/decisions?session_id={victim}")
        assert status == 200 and body == {"decisions": []}
        for read in reads:  # refused at once: never opened, so never blocked on a writer
            with pytest.raises(grpc.RpcError) as err:
                read.result(timeout=60)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "path" in err.value.details() and "FIFO" in err.value.details()
        for call in long_execs:
            call.cancel()  # type: ignore[attr-defined]
        assert client.exec(attacker, ["true"]).exit_code == 0  # the attacker's own session still works


@pytest.mark.parametrize(
    ("setup", "path", "kind"),
    [
        ("mkfifo /tmp/x", "/tmp/x", "a FIFO"),
        ("python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('/tmp/x')\"", "/tmp/x", "a socket"),
        ("mkdir /tmp/x", "/tmp/x", "a directory"),
        ("ln -s /dev/zero /tmp/x", "/tmp/x", "a symbolic link"),
        ("ln -s /dev /tmp/x", "/tmp/x/zero", "a device"),
    ],
)
def test_only_regular_files_are_read_or_written(
    own_sandgate: SandgateProcess, setup: str, path: str, kind: str
) -> None:
    with own_sandgate.client() as client:
        sid = client.create().id
        assert client.exec(sid, ["sh", "-c", setup]).exit_code == 0
        for call in (lambda: client.read_file(sid, path), lambda: client.write_file(sid, path, b"data")):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("path: ") and f"{path} is {kind}" in err.value.details()


def test_file_sizes_and_times_are_bounded_by_settings(own_sandgate_with: OwnSandgate) -> None:
    stack = own_sandgate_with(max_write_bytes=1000, max_read_bytes=2000)
    with stack.client() as client:
        sid = client.create().id
        assert client.write_file(sid, "/tmp/ok", b"x" * 1000) == 1000
        with pytest.raises(grpc.RpcError) as err:
            client.write_file(sid, "/tmp/big", b"x" * 1001)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "data" in err.value.details()
        assert client.exec(sid, ["sh", "-c", "head -c 2001 /dev/zero > /tmp/big"]).exit_code == 0
        with pytest.raises(grpc.RpcError) as err:
            client.read_file(sid, "/tmp/big")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "more than 2000" in err.value.details()


def decisions(stack: SandgateProcess, session_id: str, limit: int = 10_000) -> list[dict[str, object]]:
    status, body = stack.admin("GET", f"/v1/decisions?session_id={session_id}&limit={limit}")
    assert status == 200
    return list(body["decisions"])


def settled(stack: SandgateProcess, session_id: str) -> list[dict[str, object]]:
    """A session's decisions once Envoy has delivered them all (its log arrives in batches)."""
    deadline, seen = time.monotonic() + 120, -1
    while len(found := decisions(stack, session_id)) != seen:
        assert time.monotonic() < deadline, len(found)
        seen = len(found)
        time.sleep(2)
    return found


def test_a_flood_of_denied_requests_does_not_evict_another_sessions_allow(
    own_sandgate_with: OwnSandgate, http_upstream: Upstream
) -> None:
    stack = own_sandgate_with(decision_retention=2_000, decision_retention_per_session=500)
    port = http_upstream.port
    with stack.client() as client:
        victim = client.create(egress=[{"host": "allowed.test", "ports": [port]}]).id
        attacker = client.create(egress=[{"host": "allowed.test", "ports": [port]}]).id
        curl = "curl -s -o /dev/null -w '%{http_code}\\n'"
        assert client.exec(victim, ["sh", "-c", f"{curl} http://allowed.test:{port}/real"]).stdout == b"200\n"
        assert client.exec(attacker, ["sh", "-c", f"{curl} http://allowed.test:{port}/exfil"]).stdout == b"200\n"
        flood = f"curl -s 'http://denied.test:{port}/[1-3000]' > /dev/null; echo done"
        assert client.exec(attacker, ["sh", "-c", flood], timeout_seconds=300).stdout == b"done\n"
        flooded = settled(stack, attacker)
        kept = decisions(stack, victim)
        assert [(d["verdict"], d["host"]) for d in kept] == [("allow", "allowed.test")]
        assert ("allow", "allowed.test") in {(d["verdict"], d["host"]) for d in flooded}  # its own too
        assert len(flooded) > 500  # the flood was recorded, then trimmed
        status, body = stack.admin("GET", "/v1/decisions?limit=10000")
        assert status == 200 and len(body["decisions"]) <= 2_000
