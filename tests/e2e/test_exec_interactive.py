"""ExecInteractive, over the raw gRPC API: stdin streamed while the command runs, a PTY whose size the
command sees and that can be resized, signals delivered to the command's process group, exit codes."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import grpc
import pytest

from control_plane.api.gen.sandgate.v1 import sessions_pb2 as pb
from tests.e2e.conftest import SandgateClient
from tests.e2e.test_exec import running

SIGINT, SIGTERM = 2, 15


class Interactive:
    """One ExecInteractive call: inputs are queued, output is read until a needle or the end."""

    def __init__(self, client: SandgateClient, start: pb.ExecStart) -> None:
        self._inputs: queue.Queue[pb.ExecInput | None] = queue.Queue()
        self._inputs.put(pb.ExecInput(start=start))
        call = client._channel.stream_stream(
            "/sandgate.v1.Sessions/ExecInteractive",
            request_serializer=pb.ExecInput.SerializeToString,
            response_deserializer=pb.ExecResponse.FromString,
        )
        self.responses: Iterator[pb.ExecResponse] = call(
            iter(self._inputs.get, None), metadata=client._metadata, timeout=120
        )
        self.stdout, self.stderr = bytearray(), bytearray()
        self.exit_code: int | None = None

    def send(self, **input_: object) -> None:
        self._inputs.put(pb.ExecInput(**input_))  # type: ignore[arg-type]

    def read_until(self, needle: bytes) -> bytes:
        """Reads output until stdout holds `needle`; returns stdout so far. Fails if the command ends first."""
        while needle not in self.stdout:
            assert self._next(), f"ended before {needle!r}; stdout {bytes(self.stdout)!r}"
        return bytes(self.stdout)

    def wait(self) -> int:
        while self._next():
            pass
        self._inputs.put(None)
        assert self.exit_code is not None
        return self.exit_code

    def _next(self) -> bool:
        chunk = next(self.responses, None)
        if chunk is None:
            return False
        kind = chunk.WhichOneof("output")
        if kind == "exit_code":
            self.exit_code = chunk.exit_code
            return False
        (self.stderr if kind == "stderr" else self.stdout).extend(getattr(chunk, kind))
        return True


def start(session_id: str, *argv: str, pty: tuple[int, int] | None = None) -> pb.ExecStart:
    size = pb.TerminalSize(rows=pty[0], cols=pty[1]) if pty else None
    return pb.ExecStart(session_id=session_id, argv=list(argv), timeout_seconds=90, pty=size)


def test_stdin_streams_while_the_command_runs(client: SandgateClient) -> None:
    s = client.create()
    run = Interactive(client, start(s.id, "sh", "-c", 'while read -r line; do echo "got $line"; done; echo done >&2'))
    run.send(stdin=b"one\n")
    run.read_until(b"got one\n")  # answered before stdin ended: streamed, not one blob
    run.send(stdin=b"two\n")
    run.read_until(b"got two\n")
    run.send(close_stdin=True)
    assert run.wait() == 0
    assert bytes(run.stderr) == b"done\n"


def test_the_end_of_the_request_stream_ends_stdin(client: SandgateClient) -> None:
    s = client.create()
    run = Interactive(client, start(s.id, "wc", "-c"))
    run.send(stdin=b"12345")
    run._inputs.put(None)
    assert run.wait() == 0
    assert run.stdout.strip() == b"5"


def test_pty_size_is_seen_and_resized(client: SandgateClient) -> None:
    s = client.create()
    run = Interactive(client, start(s.id, "sh", pty=(24, 80)))
    run.send(stdin=b"[ -t 0 ] && echo is-a-tty; stty size\n")
    run.read_until(b"24 80")
    assert b"is-a-tty" in run.stdout
    run.send(resize=pb.TerminalSize(rows=40, cols=132))
    run.send(stdin=b"stty size\n")
    run.read_until(b"40 132")
    run.send(stdin=b"exit 7\n")
    assert run.wait() == 7


def test_pty_has_a_term_and_merges_stderr(client: SandgateClient) -> None:
    s = client.create()
    run = Interactive(client, start(s.id, "sh", "-c", 'echo "term=$TERM"; echo to-stderr >&2', pty=(10, 40)))
    assert run.wait() == 0
    assert b"term=xterm-256color" in run.stdout and b"to-stderr" in run.stdout
    assert not run.stderr


def test_a_signal_reaches_the_command(client: SandgateClient) -> None:
    s = client.create()
    script = 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.1; done'
    run = Interactive(client, start(s.id, "sh", "-c", script))
    run.read_until(b"ready\n")
    run.send(signal=SIGTERM)
    assert run.wait() == 3
    assert b"got-term" in run.stdout


def test_sigint_on_a_pty_ends_a_foreground_program(client: SandgateClient) -> None:
    s = client.create()
    run = Interactive(client, start(s.id, "sh", "-c", "echo ready; exec sleep 300", pty=(24, 80)))
    run.read_until(b"ready")
    run.send(signal=SIGINT)
    assert run.wait() == 128 + SIGINT


def test_leaving_early_kills_the_process_group(client: SandgateClient) -> None:
    s = client.create()
    run = Interactive(client, start(s.id, "sh", "-c", "sleep 303 & echo started; sleep 304", pty=(24, 80)))
    run.read_until(b"started")
    assert running(client, s.id, "sleep 303") and running(client, s.id, "sleep 304")
    run.responses.cancel()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while running(client, s.id, "sleep 30"):
        assert time.monotonic() < deadline, "the process group outlived its cancelled call"
        time.sleep(0.2)


CAT = pb.ExecInput(start=pb.ExecStart(argv=["cat"]))


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ([pb.ExecInput(stdin=b"x")], "start"),
        ([CAT, pb.ExecInput(resize=pb.TerminalSize(rows=1, cols=1))], "resize"),
        ([CAT, pb.ExecInput(signal=99)], "signal"),
        ([CAT, pb.ExecInput(close_stdin=True), pb.ExecInput(stdin=b"late")], "stdin"),
        ([pb.ExecInput(start=pb.ExecStart(argv=["cat"], pty=pb.TerminalSize(rows=0, cols=80)))], "start.pty"),
    ],
)
def test_a_bad_input_names_its_field(client: SandgateClient, inputs: list[pb.ExecInput], field: str) -> None:
    s = client.create()
    inputs = [_copy(m) for m in inputs]  # CAT is shared between cases
    for message in inputs:
        if message.HasField("start"):
            message.start.session_id = s.id
    call = client._channel.stream_stream(
        "/sandgate.v1.Sessions/ExecInteractive",
        request_serializer=pb.ExecInput.SerializeToString,
        response_deserializer=pb.ExecResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as raised:
        list(call(iter(inputs), metadata=client._metadata, timeout=120))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert raised.value.details().startswith(f"{field}: ")  # type: ignore[attr-defined]


def _copy(message: pb.ExecInput) -> pb.ExecInput:
    copy = pb.ExecInput()
    copy.CopyFrom(message)
    return copy
