"""Faults: kill -9 of the control plane mid-create and of Envoy; nothing leaks, everything comes back."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable

import docker
import grpc
import pytest

from tests.support.metrics import sample, scrape
from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream


def runsc_ids() -> set[str]:
    out = subprocess.run(["runsc", "--root", "/var/run/docker/runtime-runc/moby", "list", "-quiet"],
                         capture_output=True, text=True, check=False).stdout  # fmt: skip
    return set(out.split())


def curl_codes(proc: SandgateProcess, session_id: str, port: int) -> list[str]:
    script = f"for h in allowed other; do curl -s -o /dev/null -w '%{{http_code}} ' http://$h.test:{port}/; done"
    with proc.client() as c:
        return c.exec(session_id, ["sh", "-c", script]).stdout.decode().split()


def test_kill_9_mid_create_leaks_nothing_and_ready_sessions_return(
    own_sandgate: SandgateProcess, http_upstream: Upstream, docker_client: docker.DockerClient
) -> None:
    proc, port = own_sandgate, http_upstream.port
    with proc.client() as c:
        ready = [c.create(egress=[{"host": "allowed.test", "ports": [port]}]) for _ in range(2)]
    errors: list[Exception] = []

    def create_in_flight() -> None:
        try:
            with proc.client() as c:
                c.create(egress=[{"host": "allowed.test"}])
        except Exception as exc:  # the control plane dies under it
            errors.append(exc)

    creator = threading.Thread(target=create_in_flight)
    creator.start()
    in_flight_id = _new_session_dir(proc, {s.id for s in ready})  # the create has admitted it and begun
    proc.stop(signal.SIGKILL)
    creator.join(30)
    # The kill landed mid-create: the session's directory existed and the create never answered.
    assert len(errors) == 1 and isinstance(errors[0], grpc.RpcError), errors
    proc.start()

    with proc.client() as c:
        listed = {s.id: s for s in c.list().sessions}
    for s in ready:
        assert listed[s.id].state == 2 and [r.host for r in listed[s.id].egress] == ["allowed.test"]
        assert curl_codes(proc, s.id, port) == ["200", "403"]
    in_flight = [sid for sid in listed if sid not in {s.id for s in ready}]
    assert all(listed[sid].state == 4 for sid in in_flight)  # FAILED, if it got as far as the store
    assert in_flight in ([], [in_flight_id])
    containers = docker_client.containers.list(all=True, filters={"label": f"sandgate.node={proc.node_id}"})
    assert {c.labels["sandgate.session"] for c in containers} == {s.id for s in ready}
    assert in_flight_id not in {c.labels["sandgate.session"] for c in containers}
    assert {p.name for p in (proc.state_dir / "sessions").iterdir()} == {s.id for s in ready}
    assert runsc_ids() <= {c.id for c in docker_client.containers.list(all=True)}
    deadline = time.monotonic() + 10
    while (listeners := _listeners(proc)) != {f"session-{s.id}" for s in ready}:
        assert time.monotonic() < deadline, listeners
        time.sleep(0.2)


def _new_session_dir(proc: SandgateProcess, known: set[str], timeout: float = 60) -> str:
    """The id of the first session directory not in `known`, as soon as the control plane makes it (a create
    makes it after admission, before it starts the container and publishes the listener)."""
    deadline = time.monotonic() + timeout
    while not (new := {p.name for p in (proc.state_dir / "sessions").iterdir()} - known):
        assert time.monotonic() < deadline, "the create in flight made no session directory"
        time.sleep(0.002)
    return new.pop()


def _listeners(proc: SandgateProcess) -> set[str]:
    return {line.split("::")[0] for line in proc.envoy_admin("/listeners").splitlines() if line.strip()}


def test_kill_9_of_envoy_comes_back_and_readyz_shows_the_outage(
    own_sandgate: SandgateProcess, http_upstream: Upstream
) -> None:
    proc, port = own_sandgate, http_upstream.port
    with proc.client() as c:
        s = c.create(egress=[{"host": "allowed.test", "ports": [port]}])
    envoy_pid = int((proc.state_dir / "envoy.pid").read_text())
    os.kill(envoy_pid, signal.SIGKILL)
    saw_not_ready = False
    deadline = time.monotonic() + 30
    while True:
        status, body = proc.admin("GET", "/readyz", token="")
        saw_not_ready |= status == 503 and not body["ready"]
        new_pid = (proc.state_dir / "envoy.pid").read_text()
        if saw_not_ready and status == 200 and int(new_pid) != envoy_pid:
            break
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.05)
    assert curl_codes(proc, s.id, port) == ["200", "403"]


def ready_within(proc: SandgateProcess, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (status := proc.admin("GET", "/readyz", token="")[0]) != 200:
        assert time.monotonic() < deadline, f"/readyz still {status} after the restart"
        time.sleep(0.05)


def outage_codes(docker_client: docker.DockerClient, session: object, hp: int, tp: int) -> list[str]:
    """Plain HTTP allowed, denied; a new tunnel allowed, denied. Run with docker: Exec needs the control plane."""
    container = docker_client.containers.get(f"sandgate-{session.id}")  # type: ignore[attr-defined]
    c = "curl -s -k -o /dev/null"
    script = (
        f"{c} -w '%{{http_code}} ' http://allowed.test:{hp}/; {c} -w '%{{http_code}} ' http://other.test:{hp}/;"
        f" {c} -w '%{{http_connect}} ' https://secure.test:{tp}/; {c} -w '%{{http_connect}}' https://other.test:{tp}/"
    )
    proxy = session.proxy_url.replace("//", f"//u:{session.token}@")  # type: ignore[attr-defined]
    env = {"http_proxy": proxy, "https_proxy": proxy}
    result = container.exec_run(["sh", "-c", script], user="65534:65534", environment=env)
    return list(result.output.decode().split())


def test_while_the_control_plane_is_down_live_sessions_keep_their_egress(
    own_sandgate: SandgateProcess, http_upstream: Upstream, tls_upstream: Upstream, docker_client: docker.DockerClient
) -> None:
    """Envoy decides allowed traffic alone: with the control plane killed, plain HTTP and new tunnels still
    reach what the session may reach, and nothing else; once it is back, new sessions work again."""
    proc, hp, tp = own_sandgate, http_upstream.port, tls_upstream.port
    rules = [{"host": "allowed.test", "ports": [hp]}, {"host": "secure.test", "ports": [tp]}]
    with proc.client() as c:
        s = c.create(egress=rules)
    proc.stop(signal.SIGKILL)
    try:
        assert outage_codes(docker_client, s, hp, tp) == ["200", "403", "200", "403"]
        with pytest.raises(grpc.RpcError) as down, proc.client() as c:
            c.create(egress=rules)  # no new session while the control plane is down
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        proc.start()
    # Back without any write: the reconnected Envoy already holds the config, and its ACK of the
    # reconnection makes the control plane ready (before, /readyz waited for the next edit).
    ready_within(proc, 30)
    assert outage_codes(docker_client, s, hp, tp) == ["200", "403", "200", "403"]
    status, _ = proc.admin("POST", f"/v1/sessions/{s.id}/egress?wait=applied", {"host": "other.test", "ports": [hp]})
    assert status in (200, 201)
    assert outage_codes(docker_client, s, hp, tp) == ["200", "200", "200", "403"]
    with proc.client() as c:
        fresh = c.create(egress=rules)
        assert outage_codes(docker_client, fresh, hp, tp) == ["200", "403", "200", "403"]
        c.delete(fresh.id)
        c.delete(s.id)


def test_authz_every_connect_puts_the_second_check_back_and_fails_closed(
    own_sandgate_with: Callable[..., SandgateProcess],
    http_upstream: Upstream,
    tls_upstream: Upstream,
    docker_client: docker.DockerClient,
) -> None:
    proc, hp, tp = own_sandgate_with(authz_every_connect=True), http_upstream.port, tls_upstream.port
    with proc.client() as c:
        s = c.create(egress=[{"host": "allowed.test", "ports": [hp]}, {"host": "secure.test", "ports": [tp]}])
        assert outage_codes(docker_client, s, hp, tp) == ["200", "403", "200", "403"]
    assert sample(scrape(proc.admin_port), "sandgate_ext_authz_checks_total", reason="allowed") == 1
    proc.stop(signal.SIGKILL)
    try:
        # The second check cannot be asked: a new tunnel fails closed, plain HTTP is still decided natively.
        assert outage_codes(docker_client, s, hp, tp) == ["200", "403", "403", "403"]
    finally:
        proc.start()
    with proc.client() as c:
        c.delete(s.id)
