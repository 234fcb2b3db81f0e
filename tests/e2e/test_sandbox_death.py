"""A sandbox that dies fails its session at once, with a reason; its calls answer FAILED_PRECONDITION.

A fork bomb (the pids cgroup stops it: gVisor's Sentry cannot start a thread and exits), a memory
bomb (the cgroup's OOM killer) and a plain `docker kill` each end the sandbox. Before, the session
read READY afterwards and its Execs hung or answered INTERNAL.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import grpc
import pytest

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from tests.e2e.conftest import SandgateClient
from tests.support.metrics import sample, scrape

# A MemoryError (gVisor may refuse an mmap first) does not stop it: only the cgroup's OOM killer does.
MEMORY_BOMB = """python3 -c '
x = []
while True:
    try:
        x.append(bytearray(4 << 20))
    except MemoryError:
        pass
'"""
FORK_BOMB = "bomb() { bomb | bomb & }; bomb; sleep 600"


def failed(client: SandgateClient, session_id: str, timeout: float = 30) -> pb.Session:
    deadline = time.monotonic() + timeout
    while (session := client.get(session_id)).state != pb.FAILED:
        assert time.monotonic() < deadline, f"still {pb.State.Name(session.state)}"
        time.sleep(0.2)
    return session


def exits_counted(client: SandgateClient, cause: str) -> float:
    return sample(scrape(client.proc.admin_port), "sandgate_sandbox_exits_total", cause=cause) or 0.0


def assert_refused_with(client: SandgateClient, session_id: str, reason: str) -> None:
    """Every call on the session answers FAILED_PRECONDITION and says why, never INTERNAL."""
    calls: list[Callable[[], object]] = [
        lambda: client.exec(session_id, ["true"]),
        lambda: client.write_file(session_id, "/tmp/x", b"x"),
        lambda: client.read_file(session_id, "/tmp/x"),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason in err.value.details()


def run_to_death(client: SandgateClient, session_id: str, script: str) -> grpc.RpcError:
    """The Exec that kills its own sandbox: it must end, and with FAILED_PRECONDITION."""
    try:
        result = client.exec(session_id, ["sh", "-c", script], timeout_seconds=120)
    except grpc.RpcError as err:
        return err
    pytest.fail(f"the Exec ended with {result.exit_code}: {result.stdout[-300:]!r} {result.stderr[-300:]!r}")


def test_a_memory_bomb_stays_inside_its_limit_and_spares_the_neighbours(client: SandgateClient) -> None:
    """A sandbox's memory limit holds, whichever way the runtime enforces it. gVisor up to 20221219 let the
    cgroup OOM-kill the whole sandbox (the session is FAILED, oom-killed, and says so); 20240729 (what setup
    installs) refuses the allocations inside the sandbox, so the bomb fails and the session lives on. Either
    way the neighbour is untouched."""
    before = exits_counted(client, "oom-killed")
    session = client.create(limits={"memory_mb": 128})
    neighbour = client.create()
    try:
        result = client.exec(session.id, ["sh", "-c", MEMORY_BOMB], timeout_seconds=120)
    except grpc.RpcError as err:  # the sandbox was OOM-killed
        reason = "sandbox-exited: exit code 137 (OOM killed)"
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and reason in err.details()
        assert failed(client, session.id).failure_reason == reason
        assert_refused_with(client, session.id, reason)
        status, body = client.proc.admin("GET", f"/v1/decisions?session_id={session.id}&verdict=event")
        assert status == 200
        assert [(d["verdict"], d["reason"]) for d in body["decisions"]] == [("event", "sandbox-oom-killed")]
        assert exits_counted(client, "oom-killed") == before + 1
    else:  # the allocations were refused inside the sandbox: the bomb died, the sandbox did not
        assert result.exit_code != 0, result
        assert client.exec(session.id, ["echo", "alive"]).stdout == b"alive\n"
        assert client.get(session.id).state == 2  # READY
    assert client.exec(neighbour.id, ["echo", "fine"]).stdout == b"fine\n"


def test_a_fork_bomb_fails_the_session_and_spares_the_host(client: SandgateClient) -> None:
    session = client.create()
    neighbour = client.create()
    err = run_to_death(client, session.id, FORK_BOMB)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "sandbox-exited: exit code" in err.details()
    reason = failed(client, session.id).failure_reason
    assert reason.startswith("sandbox-exited: exit code ")
    assert_refused_with(client, session.id, reason)
    assert client.exec(neighbour.id, ["echo", "fine"]).stdout == b"fine\n"


def test_a_killed_sandbox_fails_its_session(client: SandgateClient, docker_client: docker.DockerClient) -> None:
    session = client.create()
    call = client.exec_stream(session.id, ["sh", "-c", "echo started; exec sleep 600"])
    assert next(call).stdout == b"started\n"
    docker_client.containers.get(f"sandgate-{session.id}").kill()
    reason = "sandbox-exited: exit code 137 (killed)"
    with pytest.raises(grpc.RpcError) as err:
        list(call)  # the Exec in flight ends, it does not hang
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason in err.value.details()
    assert failed(client, session.id).failure_reason == reason
    assert_refused_with(client, session.id, reason)
    client.delete(session.id)  # a failed session ends like any other
    with pytest.raises(grpc.RpcError) as gone:
        client.get(session.id)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
