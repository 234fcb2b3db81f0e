"""What dockerd, Envoy and SQLite say stays in the log: callers get a stable message of the right kind."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from control_plane.domain.session import Limits, Session, State
from control_plane.errors import FailedPrecondition, InvalidArgument, Rejected, Unavailable
from control_plane.sessions.docker_runtime import DockerRuntime, RuntimeWorkers
from control_plane.sessions.runtime import ContainerSpec
from control_plane.store import Store
from control_plane.workers import FairWorkers, Workers
from control_plane.xds.cache import SnapshotCache, StreamView

DOCKER_TEXT = "OCI runtime create failed: runsc: /var/lib/docker/overlay2/abc: argument list too long: unknown"


class Failing:
    """A docker client whose every call fails as dockerd would."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.containers = self
        self.images = self
        self.api = self

    def __getattr__(self, name: str) -> Any:
        def fail(*args: object, **kwargs: object) -> None:
            raise self.exc

        return fail


def docker_runtime() -> DockerRuntime:
    workers = RuntimeWorkers(Workers("control", 2), FairWorkers(Workers("session", 4), 2), 5.0, 8)
    return DockerRuntime("runsc-sandgate", workers, runsc_binary="/nonexistent/runsc")  # no orphans to clean


def runtime(exc: Exception) -> DockerRuntime:
    rt = docker_runtime()
    rt._client = Failing(exc)
    return rt


SPEC = ContainerSpec("s-0123456789abcdef", "node", "img:1", Limits(512, 1.0, 512), Path("/nonexistent"), 3128)
SERVER_ERROR = docker.errors.APIError("500 Server Error", explanation=DOCKER_TEXT)


@pytest.mark.parametrize(
    ("call", "exc", "kind", "words"),
    [
        (lambda rt: rt.start(SPEC), SERVER_ERROR, Unavailable, "could not start the sandbox of session s-0123"),
        (lambda rt: rt.start(SPEC), docker.errors.ImageNotFound("no such image: " + DOCKER_TEXT), InvalidArgument,
         "image 'img:1' is not present"),
        (lambda rt: rt.image_exists("img:1"), SERVER_ERROR, Unavailable, "could not look up image img:1"),
        (lambda rt: rt.remove(SPEC.session_id), SERVER_ERROR, Unavailable, "could not remove the sandbox"),
        (lambda rt: rt.write_file(SPEC.session_id, "/tmp/x", b"", 1), SERVER_ERROR,
         Unavailable, "could not run a command in the sandbox"),
        (lambda rt: rt.write_file(SPEC.session_id, "/tmp/x", b"", 1), docker.errors.NotFound(DOCKER_TEXT),
         FailedPrecondition, "is gone"),
    ],
)  # fmt: skip
def test_docker_errors_become_stable_messages(
    call: Any, exc: Exception, kind: type[Exception], words: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), pytest.raises(kind) as err:
        asyncio.run(call(runtime(exc)))
    message = str(err.value)
    assert words in message
    assert "OCI" not in message and "/var/lib/docker" not in message and "500" not in message
    if kind is Unavailable:
        assert DOCKER_TEXT in caplog.text  # the operator still has dockerd's words


def test_dockerd_unreachable_is_unavailable_without_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(**kwargs: object) -> None:
        raise docker.errors.DockerException("Error while fetching server API version: /var/run/docker.sock")

    monkeypatch.setattr(docker, "from_env", unreachable)
    with pytest.raises(Unavailable) as err:
        asyncio.run(docker_runtime().image_exists("img"))
    assert "dockerd" in str(err.value) and "docker.sock" not in str(err.value)


def test_an_envoy_nack_names_the_resource_not_envoys_words() -> None:
    async def scenario() -> None:
        cache = SnapshotCache()
        stream = StreamView("node")
        stream.nacked[("routes", "session-s-1")] = ("v2", "Proto constraint validation failed (regex): internals")
        await cache.attach(stream)
        await cache.wait_applied("node", {("routes", "session-s-1"): "v2"}, 1)

    with pytest.raises(Rejected) as err:
        asyncio.run(scenario())
    assert "session-s-1" in err.value.message and "regex" not in err.value.message


def test_a_state_database_that_cannot_be_written_is_unavailable(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store._db.execute("PRAGMA query_only = ON")  # what a full disk or a read-only mount does to writes
    session = Session("s-0123456789abcdef", State.READY, "n", "img", time.time(), time.time() + 60, (),
                      Limits(512, 1.0, 512))  # fmt: skip
    with pytest.raises(Unavailable) as err:
        store.put_session(session).result()
    assert "state database" in err.value.message and "readonly" not in err.value.message
    store.close()


class ExecNeverStarts:
    """docker's answer when runsc cannot start an exec: its message as output, exit 126, no pid."""

    def __init__(self) -> None:
        self.api = self
        self.tries = 0

    def exec_create(self, *args: object, **kwargs: object) -> dict[str, str]:
        self.tries += 1
        return {"Id": f"exec-{self.tries}"}

    def exec_inspect(self, exec_id: str) -> dict[str, object]:
        return {"ExitCode": 126, "Pid": 0}


def test_an_exec_that_never_starts_is_unavailable_without_dockers_words(monkeypatch: pytest.MonkeyPatch) -> None:
    from control_plane.sessions import docker_exec
    from control_plane.sessions.runtime import ExecChunk

    async def output(call: object, api: object, exec_id: str, stdin: bytes) -> Any:
        yield ExecChunk(stream="stdout", data=b"OCI runtime exec failed: exec failed: runsc: /proc/self/fd: unknown")

    async def no_wait(seconds: float) -> None:
        return None

    monkeypatch.setattr(docker_exec, "_output", output)
    monkeypatch.setattr(docker_exec.asyncio, "sleep", no_wait)
    rt = docker_runtime()
    rt._client = client = ExecNeverStarts()

    async def run() -> list[ExecChunk]:
        return [c async for c in rt.exec(SPEC.session_id, ["true"], {}, b"", 5)]

    with pytest.raises(Unavailable) as err:
        asyncio.run(run())
    assert "could not start the command" in err.value.message and "OCI" not in err.value.message
    assert client.tries >= docker_exec.EXEC_ATTEMPTS
